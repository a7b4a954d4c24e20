mod api;
mod containment;
mod crash;
mod permissions;
mod sandbox;
mod support;
mod turns;
mod web;
