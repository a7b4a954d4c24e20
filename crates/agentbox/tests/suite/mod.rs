mod api;
mod crash;
mod support;
mod turns;
mod web;
