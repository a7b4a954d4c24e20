mod api;
mod crash;
mod permissions;
mod sandbox;
mod support;
mod turns;
mod web;
