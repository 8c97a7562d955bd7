//! The `kubesim` binary: serve a scenario, print the URL, write a kubeconfig, stop on SIGTERM.

mod serve;
