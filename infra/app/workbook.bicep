// The operator's dashboard: an Azure Monitor workbook over the app's structured log
// lines, deployed with everything else (no parameter turns it on or off).
//
// Its content is workbook.json, kept as a file so that tests can read it
// (tests/infra/test_workbook.py: its structure, and every query replayed on the
// lines the app writes). Every query reads the same lines as the poisoned-or-parked
// alert (alerts.bicep): AppTraces, column Message,
//   <kind> {json}   kind dialogporten.ingest | .process | .catchup, the JSON's first
//                   key `outcome` (shared/logs.py);
//   the host's own  Message has reached MaxDequeueCount of N. Moving message to queue '...-poison'.
// and with the alert's robustness rules: a line is never parsed whole (Application
// Insights cuts a trace at 32,768 characters, and a cut line is no longer JSON), the
// outcome is read from the first 128 characters with the alert's regular expression,
// and every other field with one bounded regular expression anchored on `,"name":`
// (JSON escapes every quote inside a value, so a key forged inside an event id
// never matches).

@description('The workbook\'s resource name: a GUID (ARM refuses any other name), stable across deployments so that a redeploy updates the workbook instead of creating a second one with the same display name (which ARM refuses).')
param name string

@description('Shown in the Workbooks gallery; unique among the workbooks of the resource group.')
param displayName string

param location string
param tags object = {}

@description('Workspace that receives the app\'s Application Insights traces: the workbook\'s source and its queries\' scope.')
param logAnalyticsId string

// A workbook opened on its own (its link, the gallery) runs its queries on its
// fallbackResourceIds: workbook.json holds a placeholder there, replaced by the workspace.
var serializedData = replace(loadTextContent('workbook.json'), '__LOG_ANALYTICS_WORKSPACE_ID__', logAnalyticsId)

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: name
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: logAnalyticsId
    serializedData: serializedData
    version: 'Notebook/1.0'
  }
}

output id string = workbook.id
output name string = workbook.name
