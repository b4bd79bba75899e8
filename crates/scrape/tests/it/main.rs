mod apis;
mod browser;
mod helpers;
