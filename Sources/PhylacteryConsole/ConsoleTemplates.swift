/// The console's Mustache templates, compiled into the module (the binary runs alone: no resource
/// files). Each page fills the layout's `main`; values are HTML-escaped by `{{…}}`; only the
/// server-built SVG charts use `{{{…}}}`.
enum ConsoleTemplates {
    static let all: [String: String] = [
        "layout": layout, "overview": overview, "queue": queue, "job": job, "bulk": bulk, "traces": traces, "trace": trace,
        "memory": memory, "memory-item": memoryItem, "memory-forget": memoryForget, "facts": facts, "fact-key": factKey, "fact-retract": factRetract, "migrations": migrations, "backups": backups,
    ]

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Phylactery console</title>
        <link rel="stylesheet" href="/assets/console.css">
        <script src="/assets/console.js" defer></script>
        </head>
        <body>
        <header class="top">
        <span class="brand">Phylactery</span>
        <nav>
        {{#nav}}<a href="{{href}}"{{#active}} class="active" aria-current="page"{{/active}}>{{label}}</a>{{/nav}}
        </nav>
        <span class="live" id="live-status" hidden>live</span>
        </header>
        {{{body}}}
        <footer class="bottom">Phylactery {{version}} · <a href="/api/v1/overview">API</a> · <a href="/metrics">metrics</a></footer>
        </body>
        </html>
        """

    static let overview = """
        <main id="page-overview" data-live>
        <h1>Overview</h1>
        <section class="cards">
        <div class="card"><h2>Server</h2><p>PostgreSQL {{server.serverVersion}}</p><p>pgvector {{#server.pgvectorVersion}}{{server.pgvectorVersion}}{{/server.pgvectorVersion}}{{^server.pgvectorVersion}}not installed{{/server.pgvectorVersion}}</p>
        <p>database {{server.database}}: <span id="database-size">{{databaseSize}}</span></p>
        <p>{{server.connections.total}} of {{server.connections.maximum}} connections ({{server.connections.active}} active, {{server.connections.idleInTransaction}} idle in transaction, {{server.connections.waitingForLock}} waiting for a lock)</p>
        <p>migration head <code>{{server.migrationHead}}</code></p></div>
        <div class="card"><h2>WAL archiving</h2><p{{#archivingFailing}} class="health-failed"{{/archivingFailing}}>{{archiving}}</p></div>
        <div class="card"><h2>Backups</h2><p id="backup-state"{{#backupFailing}} class="health-failed"{{/backupFailing}}>{{backup}}</p><p><a href="/backups">Backups</a></p></div>
        <div class="card"><h2>Queue</h2>{{#queueTotals}}<p><span class="state state-{{state}}">{{state}}</span> {{count}}</p>{{/queueTotals}}{{^queueTotals}}<p>No jobs.</p>{{/queueTotals}}</div>
        </section>
        <div class="charts">
        <figure><figcaption>Jobs completed per minute (last hour)</figcaption>{{{jobsChart}}}</figure>
        <figure><figcaption>Spans recorded per minute (last hour)</figcaption>{{{spansChart}}}</figure>
        </div>
        <h2>Size by chamber</h2>
        <table class="chambers"><thead><tr><th>Schema</th><th>Tables</th><th>Size</th></tr></thead>
        <tbody>{{#chambers}}<tr><td>{{schema}}</td><td class="num">{{tables}}</td><td class="num">{{size}}</td></tr>{{/chambers}}</tbody></table>
        <h2>Autovacuum on the busiest tables</h2>
        <table class="vacuum"><thead><tr><th>Table</th><th>Live</th><th>Dead</th><th>Dead ratio</th><th>Last autovacuum</th><th>Keeping up</th></tr></thead>
        <tbody>{{#tables}}<tr><td>{{name}}</td><td class="num">{{live}}</td><td class="num">{{dead}}</td><td class="num">{{ratio}}</td><td>{{lastAutovacuum}}</td><td>{{#keepsUp}}<span class="health-ok">yes</span>{{/keepsUp}}{{^keepsUp}}<span class="health-warning">no</span>{{/keepsUp}}</td></tr>{{/tables}}</tbody></table>
        <h2>Health checks</h2>
        {{#health}}<p class="health-{{status}}">{{name}}: {{detail}}{{#fix}} — {{fix}}{{/fix}}</p>{{/health}}
        </main>
        """

    static let queue = """
        <main id="page-queue" data-live>
        <h1>Queue</h1>
        {{#notice}}<p class="notice">{{notice}}</p>{{/notice}}
        <section class="cards">
        {{#stats.queues}}<div class="card"><h2>{{queue}}</h2><p>oldest due job waiting {{oldestAvailableAge}} s</p><p>{{completedLastMinute}} completed in the last minute</p></div>{{/stats.queues}}
        </section>
        <table class="counts">
        <thead><tr><th>Queue</th><th>State</th><th>Jobs</th></tr></thead>
        <tbody>{{#stats.counts}}<tr><td>{{queue}}</td><td><a href="/queue?queue={{queue}}&amp;state={{state}}">{{state}}</a></td><td class="num">{{count}}</td></tr>{{/stats.counts}}</tbody>
        <caption>Finished states counted at {{stats.finishedCountedAt}}; the others now.</caption>
        </table>
        <div class="charts">
        <figure><figcaption>Finished per minute</figcaption>{{{throughputChart}}}</figure>
        <figure><figcaption>Mean wait (s)</figcaption>{{{waitChart}}}</figure>
        <figure><figcaption>Mean run (s)</figcaption>{{{runChart}}}</figure>
        </div>
        <form method="get" action="/queue" class="filters">
        <label>State <select name="state"><option value="">any</option>{{#states}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/states}}</select></label>
        <label>Queue <input name="queue" value="{{filter.queue}}"></label>
        <label>Kind <input name="kind" value="{{filter.kind}}"></label>
        <label>Error text <input name="error" value="{{filter.errorText}}"></label>
        <button type="submit">Filter</button>
        </form>
        <form method="get" action="/queue/bulk" class="bulk">
        <input type="hidden" name="state" value="{{filter.state}}"><input type="hidden" name="queue" value="{{filter.queue}}">
        <input type="hidden" name="kind" value="{{filter.kind}}"><input type="hidden" name="error" value="{{filter.errorText}}">
        <label>On every job of this filter: <select name="action"><option value="retry">retry</option><option value="cancel">cancel</option><option value="discard">discard</option><option value="run-now">run now</option></select></label>
        <button type="submit">Review…</button>
        </form>
        <table class="jobs">
        <thead><tr><th>Job</th><th>Kind</th><th>Queue</th><th>State</th><th>Attempt</th><th>Scheduled</th><th>Last error</th></tr></thead>
        <tbody>
        {{#page.jobs}}<tr class="job-row" data-job-id="{{id}}" data-state="{{state}}"><td><a href="/jobs/{{id}}">{{id}}</a></td><td>{{kind}}</td><td>{{queue}}</td><td><span class="state state-{{state}}">{{state}}</span></td><td class="num">{{attempt}}/{{maxAttempts}}</td><td>{{scheduledAt}}</td><td class="error-text">{{lastError}}</td></tr>
        {{/page.jobs}}
        </tbody>
        </table>
        {{^page.jobs}}<p class="empty">No job matches.</p>{{/page.jobs}}
        <nav class="pager">{{#firstURL}}<a href="{{firstURL}}">newest</a>{{/firstURL}}{{#nextURL}} <a href="{{nextURL}}" rel="next">older →</a>{{/nextURL}}</nav>
        </main>
        """

    static let job = """
        <main id="page-job" data-live>
        <h1>Job <code>{{job.id}}</code></h1>
        {{#notice}}<p class="notice">{{notice}}</p>{{/notice}}
        <dl class="facts">
        <dt>State</dt><dd><span id="job-state" class="state state-{{job.state}}">{{job.state}}</span>{{#job.cancelRequested}} (cancellation requested){{/job.cancelRequested}}</dd>
        <dt>Kind</dt><dd>{{job.kind}}</dd>
        <dt>Queue</dt><dd><a href="/queue?queue={{job.queue}}">{{job.queue}}</a></dd>
        <dt>Priority</dt><dd>{{job.priority}}</dd>
        <dt>Attempt</dt><dd>{{job.attempt}} of {{job.maxAttempts}}</dd>
        <dt>Scheduled</dt><dd>{{job.scheduledAt}}</dd>
        <dt>Last attempt started</dt><dd>{{job.attemptedAt}}</dd>
        <dt>Finished</dt><dd>{{job.finalizedAt}}</dd>
        <dt>Lease</dt><dd>{{#job.leaseExpiresAt}}until {{job.leaseExpiresAt}}{{/job.leaseExpiresAt}}{{^job.leaseExpiresAt}}none{{/job.leaseExpiresAt}}</dd>
        <dt>Worker</dt><dd>{{job.worker}}</dd>
        <dt>Unique key</dt><dd>{{job.uniqueKey}}</dd>
        <dt>Traces</dt><dd>{{#job.traces}}<a class="job-trace" href="/traces/{{traceID}}">{{rootName}} · {{start}} · {{durationMilliseconds}} ms{{#errorCount}} · {{errorCount}} error(s){{/errorCount}}</a><br>{{/job.traces}}{{^job.traces}}none recorded{{/job.traces}}</dd>
        </dl>
        <form method="post" action="/jobs/{{job.id}}" class="actions">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <button name="action" value="retry">Retry</button>
        <button name="action" value="cancel">Cancel</button>
        <button name="action" value="discard">Discard</button>
        <button name="action" value="run-now">Run now</button>
        </form>
        <h2>Arguments</h2>
        <pre class="json">{{job.arguments}}</pre>
        <h2>Result</h2>
        {{#job.result}}<pre class="json">{{job.result}}</pre>{{/job.result}}{{^job.result}}<p>none</p>{{/job.result}}
        <h2>Errors</h2>
        <table class="errors"><thead><tr><th>Attempt</th><th>At</th><th>Reason</th><th>Message</th></tr></thead>
        <tbody>{{#job.errors}}<tr><td class="num">{{attempt}}</td><td>{{at}}</td><td>{{reason}}</td><td class="error-text">{{message}}</td></tr>{{/job.errors}}</tbody></table>
        {{^job.errors}}<p>No attempt failed.</p>{{/job.errors}}
        </main>
        """

    static let bulk = """
        <main id="page-bulk">
        <h1>Confirm: {{action}} {{count}} job(s)</h1>
        <p>The filter selects <strong id="bulk-count">{{count}}</strong> job(s){{#filterText}} ({{filterText}}){{/filterText}}. {{explanation}}</p>
        <form method="post" action="/queue/bulk">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <input type="hidden" name="action" value="{{action}}">
        <input type="hidden" name="state" value="{{filter.state}}"><input type="hidden" name="queue" value="{{filter.queue}}">
        <input type="hidden" name="kind" value="{{filter.kind}}"><input type="hidden" name="error" value="{{filter.errorText}}">
        <button type="submit" class="danger">{{action}} {{count}} job(s)</button> <a href="{{backURL}}">Back</a>
        </form>
        </main>
        """

    static let traces = """
        <main id="page-traces" data-live>
        <h1>Traces</h1>
        <form method="get" action="/traces" class="filters">
        <label>Root name <input name="name" value="{{filter.name}}"></label>
        <label>Min duration (ms) <input name="min_ms" value="{{filter.minMilliseconds}}" inputmode="numeric"></label>
        <label>Status <select name="status"><option value="">any</option>{{#statuses}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/statuses}}</select></label>
        <label>Since (minutes ago) <input name="since_minutes" value="{{filter.sinceMinutes}}" inputmode="numeric"></label>
        <button type="submit">Filter</button>
        </form>
        <table class="traces">
        <thead><tr><th>Trace</th><th>Root</th><th>Service</th><th>Started</th><th>Duration (ms)</th><th>Spans</th><th>Errors</th></tr></thead>
        <tbody>{{#traces}}<tr class="trace-row" data-trace-id="{{traceID}}"><td><a href="/traces/{{traceID}}">{{traceID}}</a></td><td>{{rootName}}</td><td>{{service}}</td><td>{{start}}</td><td class="num">{{durationMilliseconds}}</td><td class="num">{{spanCount}}</td><td class="num">{{errorCount}}</td></tr>
        {{/traces}}</tbody>
        </table>
        {{^traces}}<p class="empty">No trace matches.</p>{{/traces}}
        <nav class="pager">{{#firstURL}}<a href="{{firstURL}}">newest</a>{{/firstURL}}{{#nextURL}} <a href="{{nextURL}}" rel="next">older →</a>{{/nextURL}}</nav>
        </main>
        """

    static let trace = """
        <main id="page-trace">
        <h1>Trace <code>{{trace.traceID}}</code></h1>
        <p>{{trace.spanCount}} span(s) over {{trace.durationMilliseconds}} ms{{#trace.partial}} (showing the first {{trace.shown}}){{/trace.partial}}.{{#jobID}} Job: <a id="trace-job" href="/jobs/{{jobID}}">{{jobID}}</a>{{/jobID}}</p>
        <div class="waterfall">
        {{#trace.spans}}
        <details class="span-row status-{{status}}" data-span-id="{{spanID}}">
        <summary><span class="span-name depth-{{depthClass}}">{{name}}</span><span class="span-bar">{{{bar}}}</span><span class="num">{{durationMilliseconds}} ms</span></summary>
        <dl class="facts">{{#attributes}}<dt>{{key}}</dt><dd>{{value}}</dd>{{/attributes}}</dl>
        {{#hasEvents}}<h3>Events</h3>{{/hasEvents}}<ul>{{#events}}<li>{{offsetMilliseconds}} ms: {{name}} {{attributes}}</li>{{/events}}</ul>
        </details>
        {{/trace.spans}}
        </div>
        </main>
        """

    static let memory = """
        <main id="page-memory" data-live>
        <h1>Memory</h1>
        <table class="counts"><thead><tr><th>Space</th><th>Status</th><th>Vectors</th></tr></thead>
        <tbody>{{#data.counts}}<tr><td>{{space}}</td><td>{{status}}</td><td class="num">{{count}}</td></tr>{{/data.counts}}</tbody></table>
        {{^data.counts}}<p class="empty">No vectors stored.</p>{{/data.counts}}
        <form method="get" action="/memory" class="filters">
        <label>Search by text <input name="q" value="{{query}}"></label>
        <button type="submit">Search</button>
        </form>
        {{#searched}}
        <table class="memories"><thead><tr><th>Memory</th><th>Content</th><th>Status</th><th>Owner</th><th>Score</th></tr></thead>
        <tbody>{{#data.matches}}<tr class="memory-row" data-memory-id="{{id}}"><td><a href="/memory/{{id}}">{{id}}</a></td><td>{{content}}</td><td>{{status}}</td><td>{{owner}}</td><td class="num">{{score}}</td></tr>{{/data.matches}}</tbody></table>
        {{^data.matches}}<p class="empty">No memory matches.</p>{{/data.matches}}
        {{/searched}}
        </main>
        """

    static let memoryItem = """
        <main id="page-memory-item">
        <h1>Memory <code>{{memory.id}}</code></h1>
        {{#notice}}<p class="notice">{{notice}}</p>{{/notice}}
        <dl class="facts">
        <dt>Status</dt><dd id="memory-status">{{memory.status}}</dd>
        <dt>Owner</dt><dd>{{memory.owner}}</dd>
        <dt>Source</dt><dd>{{memory.source}}</dd>
        <dt>Sensitivity</dt><dd>{{memory.sensitivity}}</dd>
        <dt>Remembered</dt><dd>{{memory.createdAt}}</dd>
        <dt>Status changed</dt><dd>{{memory.statusChangedAt}} {{#memory.statusChangedBy}}by {{memory.statusChangedBy}}{{/memory.statusChangedBy}}</dd>
        </dl>
        <h2>Content</h2>
        <pre class="json">{{memory.content}}</pre>
        <h2>Metadata</h2>
        <pre class="json">{{memory.metadata}}</pre>
        <form method="post" action="/memory/{{memory.id}}" class="actions">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <button name="action" value="consecrate">Consecrate</button>
        <button name="action" value="reject">Reject</button>
        <a href="/memory/{{memory.id}}/forget">Forget…</a>
        </form>
        <h2>Status history</h2>
        <table><thead><tr><th>At</th><th>From</th><th>To</th><th>By</th></tr></thead>
        <tbody>{{#memory.history}}<tr><td>{{at}}</td><td>{{from}}</td><td>{{to}}</td><td>{{by}}</td></tr>{{/memory.history}}</tbody></table>
        {{^memory.history}}<p class="empty">No status change yet.</p>{{/memory.history}}
        <h2>Nearest memories</h2>
        <table class="memories"><thead><tr><th>Memory</th><th>Content</th><th>Status</th><th>Distance</th></tr></thead>
        <tbody>{{#memory.neighbours}}<tr class="neighbour-row"><td><a href="/memory/{{id}}">{{id}}</a></td><td>{{content}}</td><td>{{status}}</td><td class="num">{{score}}</td></tr>{{/memory.neighbours}}</tbody></table>
        {{^memory.neighbours}}<p class="empty">No vector to compare, or no other memory in its space.</p>{{/memory.neighbours}}
        </main>
        """

    static let memoryForget = """
        <main id="page-memory-forget">
        <h1>Forget memory <code>{{memory.id}}</code>?</h1>
        <p>Its content, metadata, vectors and status history are deleted for good; an audit record keeps the id, who, when and why.</p>
        <pre class="json">{{memory.content}}</pre>
        <form method="post" action="/memory/{{memory.id}}">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label>Reason <input name="reason" required></label>
        <button name="action" value="forget" class="danger">Forget</button> <a href="/memory/{{memory.id}}">Back</a>
        </form>
        </main>
        """

    static let facts = """
        <main id="page-facts">
        <h1>Facts{{#chosen}}: {{namespace}}{{/chosen}}</h1>
        <form method="get" action="/facts" class="filters">
        <label>Namespace <input name="namespace" value="{{namespace}}"></label>
        <label>Key prefix <input name="prefix" value="{{data.prefix}}"></label>
        <button type="submit">List</button>
        </form>
        {{^chosen}}
        <table class="namespaces"><thead><tr><th>Namespace</th><th>Keys</th><th>Versions</th></tr></thead>
        <tbody>{{#data.namespaces}}<tr class="namespace-row"><td><a href="/facts?namespace={{name}}">{{name}}</a></td><td class="num">{{keys}}</td><td class="num">{{versions}}</td></tr>{{/data.namespaces}}</tbody></table>
        {{^data.namespaces}}<p class="empty">No facts yet.</p>{{/data.namespaces}}
        {{/chosen}}
        {{#chosen}}
        <table class="facts-list"><thead><tr><th>Key</th><th>Version</th><th>Value</th><th>Source</th><th>Recorded</th></tr></thead>
        <tbody>{{#data.keys}}<tr class="fact-row"><td><a href="/facts/key?namespace={{namespace}}&amp;key={{key}}">{{key}}</a></td><td class="num">{{version}}</td><td>{{#erased}}(erased){{/erased}}{{#retracted}}(retracted){{/retracted}} <code>{{valuePreview}}</code></td><td>{{source}}</td><td>{{recordedAt}}</td></tr>{{/data.keys}}</tbody></table>
        {{^data.keys}}<p class="empty">No key in this namespace under this prefix.</p>{{/data.keys}}
        {{/chosen}}
        <nav class="pager">{{#nextURL}}<a href="{{nextURL}}" rel="next">more →</a>{{/nextURL}}</nav>
        </main>
        """

    static let factKey = """
        <main id="page-fact-key">
        <h1>{{namespace}} / {{key}}</h1>
        {{#notice}}<p class="notice">{{notice}}</p>{{/notice}}
        {{#retractURL}}<p><a href="{{retractURL}}" class="danger" id="fact-retract">Retract…</a></p>{{/retractURL}}
        <table class="fact-history"><thead><tr><th>Version</th><th>Value</th><th>Source</th><th>Recorded</th><th>Note</th></tr></thead>
        <tbody>{{#versions}}<tr><td class="num">{{version}}</td><td>{{#erased}}(erased){{/erased}}{{^erased}}<pre class="json">{{value}}</pre>{{/erased}}</td><td>{{source}}</td><td>{{recordedAt}}</td><td>{{#isRetraction}}retracted: {{reason}}{{/isRetraction}}</td></tr>{{/versions}}</tbody></table>
        </main>
        """

    static let factRetract = """
        <main id="page-fact-retract">
        <h1>Retract {{namespace}} / {{key}}?</h1>
        <p>A new version records that the fact no longer holds, with your reason; every earlier version stays in the history.</p>
        <p>Now (version {{current.version}}):</p>
        <pre class="json">{{current.value}}</pre>
        <form method="post" action="/facts/key">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <input type="hidden" name="namespace" value="{{namespace}}">
        <input type="hidden" name="key" value="{{key}}">
        <label>Reason <input name="reason" required></label>
        <button name="action" value="retract" class="danger">Retract</button>
        </form>
        </main>
        """

    static let migrations = """
        <main id="page-migrations">
        <h1>Migrations</h1>
        <p>Head: <code>{{data.head}}</code>{{#upToDate}} — the schema matches the models.{{/upToDate}}</p>
        <h2>Plan the models still need</h2>
        {{#data.plan}}<div class="card"><p><strong>{{owner}}</strong>: {{summary}}</p><p>{{#hazards}}<span class="state state-discarded">{{.}}</span> {{/hazards}}</p><pre class="json">{{#sql}}{{.}}
        {{/sql}}</pre></div>{{/data.plan}}
        {{#data.refusals}}<p class="error-text">{{.}}</p>{{/data.refusals}}
        {{#data.notices}}<p class="notice">{{.}}</p>{{/data.notices}}
        {{^data.plan}}<p class="empty">Nothing to apply.</p>{{/data.plan}}
        <h2>Owners and their tables</h2>
        <table><thead><tr><th>Owner</th><th>Version</th><th>Model</th><th>Table</th><th>State</th></tr></thead>
        <tbody>{{#data.owners}}<tr><td>{{owner}}</td><td>{{version}}</td><td>{{model}}</td><td>{{table}}</td><td>{{#dormant}}dormant{{/dormant}}{{^dormant}}{{#registered}}registered{{/registered}}{{^registered}}orphaned{{/registered}}{{/dormant}}</td></tr>{{/data.owners}}</tbody></table>
        <h2>Ledger</h2>
        <table><thead><tr><th>Revision</th><th>Message</th><th>Source</th><th>Applied</th></tr></thead>
        <tbody>{{#data.ledger}}<tr><td><code>{{revision}}</code></td><td>{{message}}</td><td>{{source}}</td><td>{{appliedAt}}</td></tr>{{/data.ledger}}</tbody></table>
        </main>
        """

    static let backups = """
        <main id="page-backups">
        <h1>Backups</h1>
        {{#message}}<p class="notice">{{message}}</p>{{/message}}
        {{#configured}}
        <section class="cards">
        <div class="card"><h2>Restorable</h2><p>from {{#restorableFrom}}{{restorableFrom}}{{/restorableFrom}}{{^restorableFrom}}— (no backup yet){{/restorableFrom}}</p><p>until {{restorableUntil}}</p>{{#gaps}}<p class="error-text">gap: {{.}}</p>{{/gaps}}</div>
        <div class="card"><h2>Archive</h2><p>{{walFiles}} WAL file(s), {{walSize}}</p><p><code>{{directory}}</code></p></div>
        <div class="card"><h2>Last verification</h2>{{#lastVerification}}<p class="{{#passed}}health-ok{{/passed}}{{^passed}}health-failed{{/passed}}">{{label}} at {{at}}: {{#passed}}passed{{/passed}}{{^passed}}failed{{/passed}}</p>{{#problems}}<p class="error-text">{{.}}</p>{{/problems}}{{/lastVerification}}{{^lastVerification}}<p>none</p>{{/lastVerification}}</div>
        </section>
        <table class="backups"><thead><tr><th>Label</th><th>Kind</th><th>Parent</th><th>Started</th><th>Ended</th><th>Data</th><th>PostgreSQL</th></tr></thead>
        <tbody>{{#backups}}<tr class="backup-row"><td>{{label}}</td><td>{{kind}}</td><td>{{parent}}</td><td>{{start}}</td><td>{{stop}}</td><td class="num">{{size}}</td><td>{{postgresVersion}}</td></tr>{{/backups}}</tbody></table>
        {{/configured}}
        </main>
        """
}
