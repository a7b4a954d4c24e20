mod support;

mod audit;
mod chats;
mod checkpoints;
mod cluster;
mod copy;
mod crash;
mod events;
mod permissions;
mod queue;
mod schema;
mod tasks;
mod turns;
mod users;
