// Optional alert: an e-mail when an event is poisoned (a handler failed
// maxDequeueCount times) or parked as unrouted (a type not in the catalog).
// It reads the app's structured log lines, e.g.
//   dialogporten.process {"outcome":"poisoned","event_id":...,"queue":...}
//   dialogporten.ingest {"outcome":"parked","event_id":...,"queue":"dialogporten-unrouted"}
// which land in the workspace's AppTraces table (column Message).

param actionGroupName string
param alertRuleName string
param location string
param tags object = {}

@description('Workspace that receives the app\'s Application Insights traces.')
param logAnalyticsId string

@description('Who gets the e-mail.')
param alertEmail string

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'dp-events'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var query = '''
AppTraces
| where Message startswith "dialogporten.process " or Message startswith "dialogporten.ingest "
| extend logger = tostring(split(Message, " ")[0])
| extend payload = parse_json(substring(Message, indexof(Message, "{")))
| extend outcome = tostring(payload.outcome), queue = tostring(payload.queue)
| where (logger == "dialogporten.process" and outcome == "poisoned")
     or (logger == "dialogporten.ingest" and outcome == "parked")
| project TimeGenerated, logger, outcome, queue, event_type = tostring(payload.event_type), event_id = tostring(payload.event_id)
'''

resource poisonedOrParked 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: alertRuleName
  location: location
  tags: tags
  properties: {
    displayName: 'Dialogporten events poisoned or parked'
    description: 'An event landed in a -poison queue or was parked in dialogporten-unrouted. See the deploy guide: look at the queue, fix, replay.'
    severity: 2
    enabled: true
    scopes: [
      logAnalyticsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'queue'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

output alertRuleName string = poisonedOrParked.name
