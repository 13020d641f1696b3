//! `zoo-tokio`: the zoo protocol (`crates/pss-cli/tests/zoo/zoo.h`) on a multi-threaded
//! tokio runtime (a task per connection, work-stealing worker threads). Prints `pid`,
//! `port`, `ready`; exits on `exit` or the end of its input.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn sum(n: u64) -> u64 {
    let v: Vec<u64> = (0..n * 100).map(|i| (i * i) % 7919).collect();
    v.iter().sum()
}

async fn serve(c: TcpStream) {
    let (r, mut w) = c.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let n: u64 = line.trim().parse().unwrap_or(0);
        let out = format!("{} {}\n", std::process::id(), sum(n));
        if w.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("address").port();
    println!("pid {}\nport {port}\nready", std::process::id());
    tokio::spawn(async {
        let mut stdin = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = stdin.next_line().await {
            if line == "exit" {
                break;
            }
        }
        std::process::exit(0);
    });
    loop {
        if let Ok((c, _)) = l.accept().await {
            tokio::spawn(serve(c));
        }
    }
}
