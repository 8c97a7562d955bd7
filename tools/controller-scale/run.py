"""100 NodeDrains over a 1,000-node kubesim: the controller's CPU time and peak RSS, and how long a
NodeDrain waits for its first status. Run from a scratch directory after gen.py, with the
debug (or KDRAIN_BIN_DIR=target/release) kdrain and kubesim binaries built:
  python3 tools/controller-scale/gen.py && python3 tools/controller-scale/run.py [MAX_CONCURRENT_NODES]"""
import subprocess, time, json, os, signal, sys
import pathlib
B=os.environ.get("KDRAIN_BIN_DIR", str(pathlib.Path(__file__).resolve().parents[2] / "target" / "debug"))
env=dict(os.environ, KUBECONFIG=os.path.abspath("kc"))
sim=subprocess.Popen([f"{B}/kubesim","serve","--scenario","scn.yaml","--write-kubeconfig","kc"],stdout=subprocess.PIPE,stderr=subprocess.STDOUT)
time.sleep(1)
for _ in range(100):
    if os.path.exists("kc"): break
    time.sleep(0.5)
t=time.time()
while subprocess.run(["kubectl","get","nodes","--no-headers"],env=env,capture_output=True).returncode!=0: time.sleep(0.5)
print("sim ready", round(time.time()-t,1))
subprocess.run(["kubectl","apply","-f",str(pathlib.Path(__file__).resolve().parents[2] / "deploy/controller/crd.yaml")],env=env,check=True,capture_output=True)
ctl=subprocess.Popen([f"{B}/kdrain","controller","--kubeconfig","kc","--metrics-addr","127.0.0.1:0","--lease-namespace","default","--lease-seconds","15","--max-concurrent-nodes",sys.argv[1] if len(sys.argv)>1 else "20"],stdout=subprocess.DEVNULL,stderr=open("ctl.err","w"))
time.sleep(3)
def cpu(pid):
    f=open(f"/proc/{pid}/stat").read().split(")")[1].split()
    return (int(f[11])+int(f[12]))/os.sysconf("SC_CLK_TCK")
cpu0=cpu(ctl.pid)
t0=time.time()
import threading
applied={}
def create():
    subprocess.run(["kubectl","create","-f","drains.yaml"],env=env,check=True,capture_output=True)
    applied["t"]=time.time()-t0
th=threading.Thread(target=create); th.start()
seen={}; first={}; done={}; peak_rss=0
while len(done)<100 and time.time()-t0<900:
    out=subprocess.run(["kubectl","get","nodedrains","-o","json"],env=env,capture_output=True,text=True).stdout
    now=time.time()-t0
    for it in json.loads(out)["items"]:
        n=it["metadata"]["name"]; ph=it.get("status",{}).get("phase")
        seen.setdefault(n, now)
        if ph and n not in first: first[n]=now-seen[n]
        if ph in ("Drained","Failed","Refused") and n not in done: done[n]=(now,ph)
    for l in open(f"/proc/{ctl.pid}/status"):
        if l.startswith("VmHWM"): peak_rss=int(l.split()[1])
    time.sleep(0.3)
cpu1=cpu(ctl.pid)
phases={}
for v in done.values(): phases[v[1]]=phases.get(v[1],0)+1
lat=sorted(first.values())
th.join()
print(f"kubectl create of 100 took {applied['t']:.1f}s; from a NodeDrain first listed to its first status: median {lat[len(lat)//2]:.1f}s, max {lat[-1]:.1f}s")
print(f"ended: {phases}; last at {max(v[0] for v in done.values()):.1f}s")
print(f"controller CPU {cpu1-cpu0:.1f}s over {time.time()-t0:.0f}s; peak RSS {peak_rss/1024:.0f} MiB")
ctl.send_signal(signal.SIGTERM); ctl.wait(timeout=20)
sim.send_signal(signal.SIGTERM); sim.wait(timeout=20)
