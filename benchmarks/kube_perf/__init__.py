"""kube-perf: kube-scheduler scheduler_perf workloads as placement windows."""
