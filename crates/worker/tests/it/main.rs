mod controls;
mod crash;
mod faults;
mod helpers;
mod reconcile;
mod runs;
mod shutdown;
mod tasks;
