"""Writes scn.yaml (1000 nodes; on node-0..node-99 a 3-replica Deployment each, under a budget
maxUnavailable 1) and drains.yaml (100 NodeDrains, one per node-0..node-99) in the current
directory, for run.py."""
lines = ["nodes:", "  - {namePrefix: node-, count: 1000}", "workloads:"]
for i in range(100):
    lines.append(f"  - {{kind: Deployment, name: app{i}, namespace: ns{i % 10}, replicas: 3, nodes: [node-{i}], terminationSeconds: 0.2, readySeconds: 0.5}}")
lines.append("pdbs:")
for i in range(100):
    lines.append(f"  - {{name: app{i}, namespace: ns{i % 10}, selector: {{app: app{i}}}, maxUnavailable: 1}}")
open("scn.yaml", "w").write("\n".join(lines) + "\n")
docs = [f"apiVersion: kdrain.io/v1alpha1\nkind: NodeDrain\nmetadata:\n  name: drain-node-{i}\nspec:\n  nodeNames: [node-{i}]\n  reason: scale test" for i in range(100)]
open("drains.yaml", "w").write("\n---\n".join(docs) + "\n")
