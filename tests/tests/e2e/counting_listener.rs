//! A TCP listener that records who connected, to prove a guest's denied destination was never
//! contacted.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use nexus_tests::eventually;
use tokio::net::{TcpListener, TcpStream};

/// Listens on `127.0.0.1:0` and records the peer address of every connection it accepts.
pub struct CountingListener {
    address: SocketAddr,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
}

impl CountingListener {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let peers = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&peers);
        tokio::spawn(async move {
            while let Ok((_stream, peer)) = listener.accept().await {
                recorded.lock().unwrap().push(peer);
            }
        });
        Self { address, peers }
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Asserts that no connection arrived before this call. Connections are accepted in the
    /// order they were made, so the listener connects to itself and waits for that marker to be
    /// accepted: any earlier connection would have been recorded first.
    pub async fn assert_never_connected(&self) {
        let marker = TcpStream::connect(self.address).await.unwrap();
        let marker = marker.local_addr().unwrap();
        eventually("the marker connection to be accepted", || {
            self.peers.lock().unwrap().contains(&marker)
        })
        .await;
        assert_eq!(
            *self.peers.lock().unwrap(),
            vec![marker],
            "something connected to the listener before the marker"
        );
    }
}
