//! What the shared-state tests have in common.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

/// A TCP relay to the real Redis on 127.0.0.1:6379 that a test can cut and mend: Redis "goes
/// away" for the replicas connected through it, and comes back.
pub struct Cut {
    port: u16,
    on: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cut {
    pub async fn start() -> Cut {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let on = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (on2, conns2) = (on.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if !on2.load(Ordering::Relaxed) {
                    let _ = client.shutdown().await;
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut redis) = tokio::net::TcpStream::connect("127.0.0.1:6379").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut redis).await;
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        Cut { port, on, conns }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Drops every relayed connection and refuses new ones.
    pub fn cut(&self) {
        self.on.store(false, Ordering::Relaxed);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Relays new connections again.
    pub fn mend(&self) {
        self.on.store(true, Ordering::Relaxed);
    }
}
