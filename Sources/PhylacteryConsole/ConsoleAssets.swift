/// The console's one stylesheet and one script, compiled into the module and served from
/// `/assets/` (same origin, so the Content-Security-Policy allows them; no inline style or script).
enum ConsoleAssets {
    static let css = """
        :root { --fg: #1d2329; --muted: #5d6b78; --line: #d8dee4; --bg: #f6f8fa; --accent: #2f5d8a; --bad: #a4262c; --good: #2b7a3d; --warn: #8a6100; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: #fff; }
        header.top { display: flex; align-items: center; gap: 1.5rem; padding: .5rem 1rem; background: var(--fg); color: #fff; }
        header.top a { color: #cfd8e3; text-decoration: none; margin-right: 1rem; }
        header.top a.active { color: #fff; font-weight: 600; border-bottom: 2px solid #fff; }
        .brand { font-weight: 700; letter-spacing: .02em; }
        .live { margin-left: auto; font-size: 12px; color: #9fd49f; }
        main { padding: 1rem 1.5rem; max-width: 1400px; }
        footer.bottom { padding: 1rem 1.5rem; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); }
        h1 { font-size: 1.4rem; margin: .2rem 0 1rem; }
        h2 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
        table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
        th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { background: var(--bg); font-weight: 600; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        .error-text { color: var(--bad); max-width: 40ch; overflow-wrap: anywhere; }
        .cards { display: flex; flex-wrap: wrap; gap: 1rem; }
        .card { border: 1px solid var(--line); border-radius: 6px; padding: .5rem 1rem; min-width: 14rem; background: var(--bg); }
        .card h2 { margin-top: .2rem; }
        .card p { margin: .2rem 0; }
        .charts { display: flex; flex-wrap: wrap; gap: 1.5rem; }
        figure { margin: 0; }
        figcaption { color: var(--muted); font-size: 12px; }
        svg.chart { display: block; background: var(--bg); border: 1px solid var(--line); }
        svg.chart .bar { fill: var(--accent); }
        svg.chart .bar-bad { fill: var(--bad); }
        svg.chart .line { fill: none; stroke: var(--accent); stroke-width: 1.5; }
        svg.chart .dot { fill: var(--accent); }
        svg.chart text { font-size: 10px; fill: var(--muted); }
        .state { display: inline-block; padding: 0 .4rem; border-radius: 3px; background: var(--line); }
        .state-completed { background: #d3ecd8; }
        .state-running { background: #d6e4f5; }
        .state-discarded, .state-cancelled { background: #f5d6d8; }
        .state-scheduled { background: #f5ecd0; }
        form.filters, form.bulk, form.actions { display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; margin: .5rem 0; }
        label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
        input, select, button { font: inherit; padding: .25rem .4rem; }
        button { border: 1px solid var(--accent); background: #fff; color: var(--accent); border-radius: 4px; cursor: pointer; }
        button:hover { background: var(--accent); color: #fff; }
        button.danger { border-color: var(--bad); color: var(--bad); }
        a.danger { color: var(--bad); }
        .notice { padding: .4rem .75rem; background: #e6f0fa; border-left: 3px solid var(--accent); }
        .empty { color: var(--muted); }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
        dl.facts dt { color: var(--muted); }
        dl.facts dd { margin: 0; overflow-wrap: anywhere; }
        pre.json { background: var(--bg); border: 1px solid var(--line); padding: .5rem; overflow: auto; max-height: 30rem; }
        .pager a { margin-right: 1rem; }
        .waterfall details { border-bottom: 1px solid var(--line); }
        .waterfall summary { display: grid; grid-template-columns: minmax(16rem, 2fr) 3fr 6rem; gap: .5rem; align-items: center; cursor: pointer; padding: .15rem 0; }
        .waterfall .status-error .span-name { color: var(--bad); }
        .span-bar svg { width: 100%; height: 12px; display: block; }
        .span-bar rect { fill: var(--accent); }
        .status-error .span-bar rect { fill: var(--bad); }
        .depth-0 { padding-left: 0; } .depth-1 { padding-left: 1rem; } .depth-2 { padding-left: 2rem; } .depth-3 { padding-left: 3rem; }
        .depth-4 { padding-left: 4rem; } .depth-5 { padding-left: 5rem; } .depth-6 { padding-left: 6rem; } .depth-7 { padding-left: 7rem; }
        .depth-8 { padding-left: 8rem; } .depth-9 { padding-left: 9rem; }
        .health-ok { color: var(--good); } .health-warning { color: var(--warn); } .health-failed { color: var(--bad); }
        .error-page { max-width: 40rem; }
        """

    /// Live refresh: while the tab is visible and no form field has focus, each `refresh` event from
    /// `/events` reloads the page's `main[data-live]` in place. Pages work the same without it.
    static let script = """
        (function () {
          'use strict';
          var main = document.querySelector('main[data-live]');
          if (!main || typeof EventSource === 'undefined' || typeof fetch === 'undefined') { return; }
          var status = document.getElementById('live-status');
          var busy = false;
          function refresh() {
            if (busy || document.hidden) { return; }
            var active = document.activeElement;
            if (active && main.contains(active) && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(active.tagName)) { return; }
            busy = true;
            fetch(window.location.href, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
              .then(function (response) { return response.ok ? response.text() : null; })
              .then(function (html) {
                if (!html) { return; }
                var next = new DOMParser().parseFromString(html, 'text/html').querySelector('main[data-live]');
                if (next && next.id === main.id) {
                  var open = Array.prototype.map.call(main.querySelectorAll('details[open]'), function (d) { return d.dataset.spanId; });
                  main.replaceWith(next);
                  main = next;
                  open.forEach(function (id) { var d = main.querySelector('details[data-span-id="' + id + '"]'); if (d) { d.open = true; } });
                }
              })
              .catch(function () {})
              .then(function () { busy = false; });
          }
          var source = new EventSource('/events');
          source.addEventListener('refresh', refresh);
          source.addEventListener('open', function () { if (status) { status.hidden = false; } });
          source.addEventListener('error', function () { if (status) { status.hidden = true; } });
        })();
        """
}
