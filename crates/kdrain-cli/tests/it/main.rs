//! Integration tests: the real `kdrain` binary against an in-process kubesim.

mod bad_input;
mod capacity;
mod cli_args;
mod common;
mod controller;
mod cordon;
mod demo;
mod drain_text;
mod json;
mod kubectl_parity;
mod live_view;
mod parallel;
mod plan;
mod readme;
mod readme_samples;
mod resilience;
mod security;
mod surge;
mod wait_for_capacity;
mod waves;
