// Optional alert: an e-mail when an event is poisoned (a handler failed
// maxDequeueCount times) or parked as unrouted (a type not in the catalog).
// It reads two kinds of lines in the workspace's AppTraces table (column Message):
//   the app's:  dialogporten.process {"outcome":"poisoned","event_id":...,"queue":...}
//               dialogporten.ingest {"outcome":"parked",...}
//     (log contract: `<kind> {json}`, kind `dialogporten.*`, the JSON's first key
//     is `outcome`, serialised without spaces)
//   the host's: Message has reached MaxDequeueCount of 5. Moving message to queue '...-poison'.
// A line is never parsed whole: Application Insights cuts a trace at 32,768
// characters, which breaks parse_json on long lines. The outcome is read from the
// first 128 characters and the queue with one bounded regular expression.

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

// The rule runs every 5 minutes but looks 15 minutes back, so that a line that
// reaches the workspace late (ingestion typically takes 20 s to 3 min, more at
// times) is still in range; the query counts each line once, in the run after it
// was ingested (`ingestion_time() > ago(5m)`, the evaluation frequency).
var evaluationFrequency = 'PT5M'
var windowSize = 'PT15M'

var query = '''
AppTraces
| where ingestion_time() > ago(5m)
| where Message startswith_cs "dialogporten." or Message startswith_cs "Message has reached MaxDequeueCount of "
| extend head = substring(Message, 0, 128)
| extend outcome = iff(head startswith_cs "Message has reached MaxDequeueCount of ", "poisoned", extract(@'^dialogporten\.[a-z_.]{1,40} \{"outcome":"([a-z_]{1,20})"', 1, head))
| where outcome in ("poisoned", "parked")
| extend queue = coalesce(extract(@"Moving message to queue '([a-z0-9-]{3,63})'", 1, substring(Message, 0, 512)), extract(@',"queue":"([a-z0-9-]{3,63})"', 1, Message), "unknown")
| project TimeGenerated, outcome, queue
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
    evaluationFrequency: evaluationFrequency
    windowSize: windowSize
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
