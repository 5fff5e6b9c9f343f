"""Diagnostic: where the extra time of a %%remote round trip goes (not part of run.py).

    python benchmarks/profile_wait.py

Compares, interleaved on the embedded cluster: raw ``submit().result()``; the wait pattern
of ``core.calls`` (``add_done_callback`` -> callback thread -> queue, then
``future.result()``, which hops to the event loop again and gathers); a loop-side
wait-and-gather handing the value over in one hop; ``core.cells.run_cell`` as is and with
that loop-side wait patched in; then the same with the workers' per-call "running" log
event switched off. Monkeypatches only this process and the workers, never the files.
"""
import io, contextlib, time, os, sys, statistics, queue
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
import jupyter_remote
from jupyter_remote.core import cells, calls, logs
cl = jupyter_remote.cluster("local"); client = cl.client
def f(): return 1
ns = {}
orig_wait, orig_result = calls.wait, calls.result
_values = {}

def fetch_in_loop(fut, inbox):
    async def go():
        while fut.status == "pending":
            await fut._state.wait()
        if fut.status == "finished":
            try:
                v = await client._gather([fut])
                _values[fut.key] = v[0]
            except Exception:
                pass
        inbox.put((calls._DONE, fut))
    client.loop.add_callback(go)

def fast_wait(call, futures=None, *, timeout=None, on_lines=None, on_done=None):
    futures = list(call.futures if futures is None else futures)
    inbox = queue.SimpleQueue()
    if on_lines is not None:
        call.log.listen(lambda _l, lines: lines and inbox.put(lines))
    for fu in futures: fetch_in_loop(fu, inbox)
    pending = len(futures)
    while pending:
        item = inbox.get()
        if isinstance(item, tuple) and item[0] is calls._DONE:
            pending -= 1
        elif on_lines: on_lines(item)
def fast_result(call, fut):
    if fut.key in _values: return _values.pop(fut.key)
    return orig_result(call, fut)

def B():
    fut = client.submit(f, pure=False); q = queue.SimpleQueue()
    fut.add_done_callback(q.put); q.get(); fut.result()
def C():
    fut = client.submit(f, pure=False); q = queue.SimpleQueue()
    fetch_in_loop(fut, q); q.get(); _values.pop(fut.key)
def D(): cells.run_cell("\n1 + 1", ns, cl)
def E():
    calls.wait, calls.result = fast_wait, fast_result
    try: cells.run_cell("\n1 + 1", ns, cl)
    finally: calls.wait, calls.result = orig_wait, orig_result
cases = {"raw": lambda: client.submit(f, pure=False).result(), "B_cb+result": B, "C_loop_gather": C,
         "D_core_run_cell": D, "E_core_run_cell_loopgather": E}
def bench(cases, reps=300, warm=30):
    t = {k: [] for k in cases}; names = list(cases)
    for i in range(warm+reps):
        k = i % len(names)
        for n in names[k:]+names[:k]:
            s = time.perf_counter(); cases[n](); d = time.perf_counter()-s
            if i >= warm: t[n].append(d*1000)
    for n, v in t.items():
        v.sort(); print(f"  {n:32s} median {statistics.median(v):6.2f}  p95 {v[int(.95*len(v))]:6.2f}")
print("phase 1"); bench(cases)
def no_state(): 
    from jupyter_remote.worker import capture
    capture.Sink.state = lambda self, state, **info: None
    return True
print(client.run(no_state))
print("phase 2: workers' Sink.state disabled (no 'running' event per call)")
bench({"raw": cases["raw"], "D_core_run_cell": D, "E_core_run_cell_loopgather": E})
