mod api;
mod containment;
mod crash;
mod sandbox;
mod support;
mod turns;
mod web;
