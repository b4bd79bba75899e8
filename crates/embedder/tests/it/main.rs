//! The embedders against real peers: an OpenAI-compatible fixture server on loopback that
//! misbehaves on request, and all-MiniLM-L6-v2 loaded from the folder deploy/model.sh fills.
mod http;
mod minilm;
