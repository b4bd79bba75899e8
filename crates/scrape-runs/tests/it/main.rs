mod pace;
mod sites;
mod slots;
