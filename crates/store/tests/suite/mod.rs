mod support;

mod audit;
mod chats;
mod checkpoints;
mod cluster;
mod copy;
mod copy_per_run;
mod crash;
mod events;
mod permissions;
mod queue;
mod queue_summary;
mod schema;
mod secrets;
mod tasks;
mod turns;
mod users;
