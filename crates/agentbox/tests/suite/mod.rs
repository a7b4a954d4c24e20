mod api;
mod crash;
mod sandbox;
mod support;
mod turns;
mod web;
