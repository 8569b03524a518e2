"""Self-contained HTML reports: counterexample timelines, search figures, regress tables.

Every page is one file with its CSS, script and data inline: nothing is fetched when it
is viewed. A trace is a timeline, one row a step and one lane a VCPU (plus a lane for
state shared by all VCPUs): each lane always shows the VCPU's pc, queue, shadow and TLB
entries, and any other field that the step changed; changed fields are highlighted and
show their old value on hover. Selecting a step (click, or the keys j/k, arrows,
Home/End) shows the whole state after it below the table. The failing property instance
is explained under the last step, and the fields it read are outlined there.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from itertools import product
from typing import Any, Sequence

from deferral.checks.results import Path, SearchResult
from deferral.model.concrete import Model, State, Violation
from deferral.model.schema import VCPU, Layout, Var

#: Fields every VCPU lane shows at every step (when the protocol has them).
ALWAYS = ("pc", "space", "cr3", "queue", "shadow", "tlb")
SHARED = "shared"


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def shown(value: Any) -> str:
    """A value as the terminal tables show it: none, T/F, [a,b]."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, list):
        return "[" + ",".join(shown(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True)
class Field:
    """One element of a variable: its full label, the lane it belongs to, its short label."""

    var: Var
    label: str  # shadow[1][0]
    lane: str  # "shared" or the VCPU number as a string
    short: str  # shadow[0] (the lane's VCPU index dropped)


def fields(layout: Layout) -> list[Field]:
    """Every element of every variable, in layout order, assigned to a lane."""
    out = []
    for var in layout.shown_variables:
        shown = var.shown_dims(layout.bounds)
        for idx in product(*(range(n) for n in layout.shown_shape(var))):
            label = var.name + "".join(f"[{i}]" for i in idx)
            if shown and var.index[shown[0]] is VCPU:
                out.append(Field(var, label, str(idx[0]), var.name + "".join(f"[{i}]" for i in idx[1:])))
            else:
                out.append(Field(var, label, SHARED, label))
    return out


def values(layout: Layout, state: State) -> dict[str, Any]:
    """Every field's shown value in ``state`` (queues as lists, oldest first)."""
    doc = layout.to_json(state)
    out: dict[str, Any] = {}
    for var in layout.shown_variables:
        for idx in product(*(range(n) for n in layout.shown_shape(var))):
            node = doc[var.name]
            for i in idx:
                node = node[i]
            out[var.name + "".join(f"[{i}]" for i in idx)] = node
    return out


def _field_of_slot(label: str) -> str:
    """A slot label (``len(queue[0])``, ``queue[0]<1>``) as its field's label."""
    if label.startswith("len(") and label.endswith(")"):
        label = label[4:-1]
    return label.split("<", 1)[0]


@dataclass
class TraceView:
    """One trace to show: a path of real states, what fails at its end, and where it links."""

    anchor: str
    title: str
    model: Model
    path: Path
    verdict: str = ""  # one line under the table (the failing instance, or the replay verdict)
    failing: list[Violation] = field(default_factory=list)
    explain: str = ""  # the property's meaning
    notes: list[str] = field(default_factory=list)


def counterexample_view(anchor: str, model: Model, path: Path, prop_name: str, title: str) -> TraceView:
    """A counterexample: the path, and the instances of ``prop_name`` failing at its end."""
    prop = model.protocol.prop(prop_name)
    final = path[-1][1]
    failing = model.failing(prop, final)
    if prop.kind == "invariant":
        verdict = "; ".join(f"✗ {v.describe()}" for v in failing) or f"✗ {prop_name}"
    else:
        verdict = (f"✗ {prop_name}: from this state no state where the goal holds is reachable, "
                   f"whatever runs next (" + "; ".join(v.describe() for v in failing) + ")")
    return TraceView(anchor, title, model, path, verdict, failing, prop.doc)


# ---- pieces --------------------------------------------------------------------------
def timeline(view: TraceView) -> str:
    """The timeline table of one trace, its state panel and its embedded data."""
    model = view.model
    layout = model.layout
    lanes = [SHARED] + [str(i) for i in range(model.bounds.vcpus)]
    all_fields = fields(layout)
    first = {name: n for n, name in enumerate(ALWAYS)}
    by_lane = {lane: sorted((f for f in all_fields if f.lane == lane),
                            key=lambda f: first.get(f.var.name, len(ALWAYS)))
               for lane in lanes}
    bad = {_field_of_slot(k) for v in view.failing for k in v.values}
    rows = []
    states_data = []
    previous: dict[str, Any] | None = None
    last = len(view.path) - 1
    for number, (action, state) in enumerate(view.path):
        now = values(layout, state)
        changed = {k for k in now if previous is not None and now[k] != previous[k]}
        if action is None:
            step = "initial state"
        else:
            step = f"{action.step.name}(" + ", ".join(f"{k}={v}" for k, v in action.arg_dict().items()) + ")"
        cells = []
        lane_data: dict[str, list[list[Any]]] = {}
        for lane in lanes:
            parts = []
            lane_data[lane] = []
            for f in by_lane[lane]:
                is_changed = f.label in changed
                is_bad = number == last and f.label in bad
                old = shown(previous[f.label]) if previous is not None and is_changed else None
                lane_data[lane].append([f.short, shown(now[f.label]), old, is_bad])
                if not (is_changed or is_bad or f.var.name in ALWAYS or number == 0 and lane == SHARED):
                    continue
                cls = " ".join(c for c, on in (("chg", is_changed), ("bad", is_bad)) if on)
                title = f' title="{esc(f.label)}: {esc(old)} → {esc(shown(now[f.label]))}"' if is_changed \
                    else f' title="{esc(f.label)}"'
                parts.append(f'<span class="f {cls}"{title}><b>{esc(f.short)}</b> {esc(shown(now[f.label]))}</span>')
            cells.append(f'<td class="lane">{" ".join(parts)}</td>')
        states_data.append({"step": step, "lanes": lane_data})
        rows.append(f'<tr class="step" data-n="{number}" tabindex="-1"><td class="n">{number}</td>'
                    f'<td class="st">{esc(step)}</td>{"".join(cells)}</tr>')
        previous = now
    head = "".join(f"<th>{'shared' if lane == SHARED else 'VCPU ' + lane}</th>" for lane in lanes)
    data = json.dumps({"lanes": lanes, "states": states_data}).replace("</", "<\\/")
    verdict = f'<p class="verdict">{esc(view.verdict)}</p>' if view.verdict else ""
    explain = f'<p class="explain">{esc(view.explain)}</p>' if view.explain else ""
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in view.notes)
    return (f'<section class="trace" id="{esc(view.anchor)}"><h2>{esc(view.title)}</h2>{notes}'
            f'<table class="timeline"><thead><tr><th>#</th><th>step</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>{verdict}{explain}'
            f'<div class="panel" aria-live="polite"></div>'
            f'<script type="application/json" class="trace-data">{data}</script></section>')


def level_plot(levels: Sequence[int], width: int = 560, height: int = 160) -> str:
    """An inline SVG bar chart: new states at each BFS level (level 0 is the initial state)."""
    if not levels:
        return ""
    top = max(levels) or 1
    n = len(levels)
    bar = max(1.0, (width - 40) / n)
    bars = []
    for d, count in enumerate(levels):
        h = (height - 30) * count / top
        x = 40 + d * bar
        bars.append(f'<rect x="{x:.1f}" y="{height - 20 - h:.1f}" width="{max(0.5, bar - 1):.1f}" '
                    f'height="{h:.1f}"><title>level {d}: {count:,} new states</title></rect>')
    return (f'<figure><svg class="plot" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-label="new states per BFS level">'
            f'<text x="0" y="12">{top:,}</text><text x="0" y="{height - 20}">0</text>'
            f'<text x="40" y="{height - 4}">level 0</text>'
            f'<text x="{width - 60}" y="{height - 4}">level {n - 1}</text>{"".join(bars)}</svg>'
            f'<figcaption>New states per BFS level ({n} levels)</figcaption></figure>')


def table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "data") -> str:
    """A table; cells are HTML already (escape text with :func:`esc`)."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def coverage_html(result: SearchResult) -> str:
    """The coverage table of a search: never-enabled steps stand out."""
    cov = result.coverage
    if cov is None:
        return ""
    rows = [[f"<code>{esc(name)}</code>", f"{cov.transitions[name]:,}",
             (f'<span class="no">{n:,} (never enabled)</span>' if n == 0 else f"{n:,}")]
            for name, n in cov.enabled_in.items()]
    rows += [[f"property <code>{esc(name)}</code>", "", f"checked in {n:,}"] for name, n in cov.checked.items()]
    unit = "orbits" if result.symmetry else "states"
    return (f"<h2>Coverage (counts over stored {unit})</h2>"
            + table(["step", "transitions", "enabled in"], rows))


def status(text: str) -> str:
    cls = {"holds": "ok", "proved": "ok", "passes": "ok", "violated": "no", "violates": "no",
           "LOST": "no", "NEW": "no", "unknown": "unk"}.get(text.split(" ")[0], "")
    return f'<span class="{cls}">{esc(text)}</span>'


# ---- pages ---------------------------------------------------------------------------
def search_page(model: Model, result: SearchResult, levels: Sequence[int] = (),
                coverage: str = "") -> str:
    """``check --html``: figures, verdicts, the BFS level plot, and each counterexample."""
    sym = "on" if result.symmetry else "off"
    head = (f"{result.variant} at {result.bounds.short()}, symmetry {sym}: {result.states:,} states, "
            f"{result.transitions:,} transitions, depth {result.depth}, {result.elapsed_s:.2f} s"
            + ("" if result.complete else f" (stopped by {result.stopped_by})"))
    rows = []
    views = []
    for o in result.outcomes:
        link = ""
        if o.status == "violated" and o.path is not None:
            anchor = f"cex-{o.name}"
            link = f'<a href="#{anchor}">counterexample, {o.length} steps</a>'
            views.append(counterexample_view(anchor, model, o.path, o.name,
                                             f"{o.name} violated: shortest counterexample, {o.length} steps"))
        rows.append([f"<code>{esc(o.name)}</code>", esc(o.kind), status(o.status), link])
    body = [f"<p>{esc(head)}</p>", table(["property", "kind", "status", "trace"], rows)]
    if levels:
        body.append(level_plot(levels))
    if coverage:
        body.append(coverage)
    body += [timeline(v) for v in views]
    return page(f"deferral check: {result.variant} {result.bounds.short()}", body)


def trace_page(title: str, summary: Sequence[str], views: Sequence[TraceView]) -> str:
    """``prove --html`` and ``replay --html``: a summary and the trace timeline(s)."""
    body = [f"<p>{esc(line)}</p>" for line in summary]
    body += [timeline(v) for v in views]
    return page(title, body)


def replay_view(report: Any, model: Model, verdict: str) -> TraceView:
    """A replayed trace (a :class:`deferral.traces.replay.ReplayReport`) as a timeline."""
    trace = report.trace
    last = report.steps_replayed
    failing = [v for n, v in report.violations if n == last]
    notes = [f"after step {n}: {v.describe()}" for n, v in report.violations if n != last][:20]
    d = report.divergence
    if d is not None:
        notes.append(f"REJECTED at {d.describe()}")
        notes += [f"{k}: model {d.expected.get(k)!r}, trace {d.actual.get(k)!r}"
                  for k in sorted(set(d.expected) | set(d.actual))]
    explain = " ".join(model.protocol.prop(v.prop).doc for v in failing[:1])
    line = "; ".join(f"✗ {v.describe()}" for v in failing)
    return TraceView("trace", f"{trace.variant} at {trace.bounds.short()}: {last} steps replayed",
                     model, report.path, line, failing, explain, notes + [verdict])


def regress_page(report: Any, corpus: Sequence[Any] = ()) -> str:
    """``regress --html``: verdicts, corpus and behaviours side by side, each trace linked."""
    from deferral.traces.corpus import steps_only
    from deferral.traces.replay import replay

    b, c = report.baseline, report.candidate
    entries = {e.name: e for e in corpus}
    views: list[TraceView] = []
    rows = []
    for n, row in enumerate(report.verdicts):
        cand = status(row.candidate)
        if row.candidate_path is not None:
            anchor = f"cex-{n}"
            views.append(counterexample_view(anchor, Model(c, row.bounds), row.candidate_path, row.prop,
                                             f"{row.prop} in {c.name} at {row.bounds.short()}: "
                                             f"shortest counterexample, {row.candidate_length} steps"))
            cand += f' <a href="#{anchor}">{row.candidate_length} steps</a>'
        rows.append([f"<code>{esc(row.prop)}</code>", esc(row.bounds.short()), status(row.baseline), cand,
                     status(row.change)])
    body = [f"<p>baseline <b>{esc(b.name)}</b> ({esc(b.source)}); candidate <b>{esc(c.name)}</b> "
            f"({esc(c.source)})" + (": " + esc(", ".join(f"{x.kind} {x.what} {x.name}" for x in c.changes))
                                    if c.changes else "") + "</p>",
            "<h2>Properties</h2>", table(["property", "bounds", "baseline", "candidate", "change"], rows)]
    if report.corpus:
        crows = []
        for n, crow in enumerate(report.corpus):
            exp = crow.expected or {}
            want = exp.get("outcome", "-") + (f" {exp['property']}" if exp.get("property") else "")
            cells = []
            for side, proto, judged in (("baseline", b, crow.baseline), ("candidate", c, crow.candidate)):
                anchor = f"corpus-{n}-{side}"
                entry = entries.get(crow.name)
                text = status(judged.outcome + (" " + ", ".join(judged.properties) if judged.properties else ""))
                if judged.outcome == "cannot-replay":
                    text += f" <small>({esc(judged.brief_reason)})</small>"
                if entry is not None:
                    replayed = replay(steps_only(entry.trace, proto), proto)
                    model = Model(proto, entry.trace.bounds)
                    views.append(replay_view(replayed, model, f"{crow.name} on {side} {proto.name}: "
                                                              f"{judged.describe()}"))
                    views[-1].anchor = anchor
                    views[-1].title = f"corpus {crow.name} on the {side} ({proto.name})"
                    text += f' <a href="#{anchor}">trace</a>'
                cells.append(text)
            crows.append([f"<code>{esc(crow.name)}</code>", esc(want), *cells, status(crow.change)])
        body += [f"<h2>Corpus ({len(report.corpus)} traces, replayed step by step on each side)</h2>",
                 table(["trace", "expected", "baseline", "candidate", "change"], crows)]
    if report.behaviours:
        from deferral.traces.report.document import states_shown

        brows = []
        for n, brow in enumerate(report.behaviours):
            d = brow.diff
            if d is None:
                brows.append([esc(brow.bounds.short()), esc(brow.skipped), "", "", ""])
                continue
            added, lost = str(d.added), str(d.lost)
            if d.added_example:
                views.append(TraceView(f"added-{n}", f"A behaviour {c.name} adds at {d.bounds.short()}",
                                       Model(c, d.bounds), d.added_example))
                added += f' <a href="#added-{n}">example</a>'
            if d.lost_example:
                views.append(TraceView(f"lost-{n}", f"A behaviour {c.name} loses at {d.bounds.short()} "
                                                    f"(shortest trace in {b.name})",
                                       Model(b, d.bounds), d.lost_example))
                lost += f' <a href="#lost-{n}">example</a>'
            brows.append([esc(d.bounds.short()), esc(states_shown(d).replace("/", " / ")),
                          f"{d.baseline_behaviours:,} / {d.candidate_behaviours:,}", added, lost])
        body += ["<h2>Behaviours (reachable states on the shared protocol variables, up to VCPU symmetry)</h2>",
                 table(["bounds", "states base / cand", "behaviours base / cand", "added", "lost"], brows)]
    if report.proofs:  # --prove
        prows = []
        for n, prow in enumerate(report.proofs):
            cells = []
            for side, proto, res in (("baseline", b, prow.baseline), ("candidate", c, prow.candidate)):
                text = status(res.status) + f" <small>({res.elapsed_s:.1f} s)</small>"
                ref = res.refutation
                if ref is not None:
                    anchor = f"proof-{n}-{side}"
                    views.append(counterexample_view(anchor, ref.model, ref.outcome.path, ref.outcome.name,
                                                     f"{ref.outcome.name} in {proto.name} at {ref.bounds.short()}: "
                                                     f"shortest counterexample, {ref.length} steps"))
                    text += f' <a href="#{anchor}">{ref.length} steps at {esc(ref.bounds.short())}</a>'
                elif res.status != "proved":
                    text += f" <small>{esc(res.verdict)}</small>"
                cells.append(text)
            prows.append([esc(prow.where), *cells, status(prow.change)])
        body += ["<h2>Proofs for every N, V, F (prove --parametric)</h2>",
                 table(["concrete", "baseline", "candidate", "change"], prows)]
    verdict = ("REGRESSION" if report.regressed else
               f"unknown (stopped by {report.stopped_by}; not checked: {', '.join(report.not_done)})"
               if report.stopped_by else "not proved" if report.exit_code == 3 else "no regression")
    body.append(f'<p class="{"verdict" if report.regressed else "ok"}">{esc(verdict)}: exit code '
                f"{report.exit_code}</p>")
    body += [timeline(v) for v in views]
    return page(f"deferral regress: {c.name} against {b.name}", body)


def page(title: str, body: Sequence[str]) -> str:
    """The whole document: inline CSS and script, no external resource."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
            f'<header><h1>{esc(title)}</h1><p class="keys">Keys: j/↓ next step, k/↑ previous, '
            f"Home/End first/last, click a row to select it.</p></header><main>{''.join(body)}</main>"
            f"<script>{_JS}</script></body></html>\n")


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222;background:#fff}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}.keys{color:#777;font-size:.9em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:3px 6px;vertical-align:top}
th{background:#f3f3f3;text-align:left}td.n{color:#888;text-align:right}td.st{font-family:monospace;white-space:nowrap}
td.lane{font-family:monospace;font-size:.92em}.f{display:inline-block;margin-right:.6em;white-space:nowrap}
.f b{font-weight:normal;color:#666}.chg{background:#fff2a8;border-radius:3px}
.bad{outline:2px solid #d22;border-radius:3px}tr.step{cursor:pointer}tr.sel{background:#e6f0ff}
tr.sel td.n{color:#000;font-weight:bold}.verdict{color:#c00;font-weight:bold}.explain{color:#555}
.ok{color:#070;font-weight:bold}.no{color:#c00;font-weight:bold}.unk{color:#a60;font-weight:bold}
.panel{border:1px solid #ccd;padding:.5em;margin:.5em 0;background:#fafbff;font-family:monospace;font-size:.92em}
.panel .lanes{display:flex;gap:2em;flex-wrap:wrap}.panel .lanes .f{display:block}.panel h3{font-size:1em;margin:.2em 0}
svg.plot rect{fill:#4a7bd0}svg.plot text{font-size:10px;fill:#555}.note{color:#555}
"""

_JS = r"""
(function(){
  var active=null;
  function esc(s){return String(s).replace(/[&<>"]/g,function(c){return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c];});}
  function render(sec,n){
    var data=sec._data, st=data.states[n], out='<div><b>after step '+n+': '+esc(st.step)+'</b></div><div class="lanes">';
    data.lanes.forEach(function(lane){
      out+='<div><h3>'+(lane==='shared'?'shared':'VCPU '+lane)+'</h3>';
      st.lanes[lane].forEach(function(f){
        var cls=(f[2]!==null?'chg ':'')+(f[3]?'bad':'');
        out+='<div class="f '+cls+'">'+esc(f[0])+' = '+esc(f[1])+(f[2]!==null?' (was '+esc(f[2])+')':'')+'</div>';
      });
      out+='</div>';
    });
    sec.querySelector('.panel').innerHTML=out+'</div>';
  }
  function select(sec,n,scroll){
    var rows=sec.querySelectorAll('tr.step');
    if(!rows.length)return;
    n=Math.max(0,Math.min(rows.length-1,n));
    rows.forEach(function(r){r.classList.remove('sel');});
    rows[n].classList.add('sel');
    sec._sel=n; active=sec; render(sec,n);
    if(scroll&&rows[n].scrollIntoView)rows[n].scrollIntoView({block:'nearest'});
  }
  var secs=document.querySelectorAll('section.trace');
  secs.forEach(function(sec){
    sec._data=JSON.parse(sec.querySelector('script.trace-data').textContent);
    sec.querySelectorAll('tr.step').forEach(function(r){
      r.addEventListener('click',function(){select(sec,parseInt(r.dataset.n,10));});
    });
    select(sec,sec._data.states.length-1);
  });
  if(secs.length)active=secs[0];
  document.addEventListener('keydown',function(e){
    if(!active)return;
    var n=active._sel, last=active._data.states.length-1;
    if(e.key==='ArrowDown'||e.key==='j'||e.key==='ArrowRight'){select(active,n+1,true);}
    else if(e.key==='ArrowUp'||e.key==='k'||e.key==='ArrowLeft'){select(active,n-1,true);}
    else if(e.key==='Home'){select(active,0,true);}
    else if(e.key==='End'){select(active,last,true);}
    else return;
    e.preventDefault();
  });
  window.addEventListener('hashchange',function(){
    var sec=document.getElementById(location.hash.slice(1));
    if(sec&&sec._data)active=sec;
  });
})();
"""
