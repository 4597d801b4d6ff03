//! An open-loop HTTP/1.1 load generator for `scripts/bench-gateway`: CONNECTIONS keep-alive
//! connections, each sending on a fixed schedule so that together they make RATE requests/s,
//! one blocking thread per connection (cheap on CPU, microsecond sleeps).
//!
//! Latency is measured from when a request was due, not when it was sent, whenever the
//! connection was still busy with the previous answer at that time: a stalled server is not
//! excused by the generator politely waiting (coordinated omission). When the generator's own
//! wake-up was late, the clock starts at the send instead.
//!
//! Usage: loadgen ADDR PATH RATE SECONDS CONNECTIONS [HEADER: VALUE]...
//! Prints one JSON object: requests, errors, rate, p50/p90/p99/p999/max in microseconds.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok(status)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: loadgen ADDR PATH RATE SECONDS CONNECTIONS [HEADER: VALUE]...");
        std::process::exit(2);
    }
    let addr = args[1].clone();
    let path = args[2].clone();
    let rate: f64 = args[3].parse().expect("RATE");
    let seconds: f64 = args[4].parse().expect("SECONDS");
    let connections: usize = args[5].parse().expect("CONNECTIONS");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for header in &args[6..] {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let interval = Duration::from_secs_f64(connections as f64 / rate);
    let per_connection = (seconds * rate / connections as f64) as usize;
    let start = Instant::now() + Duration::from_millis(50);
    let threads: Vec<_> = (0..connections)
        .map(|c| {
            let addr = addr.clone();
            let request = request.clone();
            std::thread::spawn(move || {
                let stream = TcpStream::connect(&addr).expect("connect");
                stream.set_nodelay(true).ok();
                let mut writer = stream.try_clone().expect("clone");
                let mut reader = BufReader::new(stream);
                // Connections start spread over one interval, not all at once.
                let offset = interval.mul_f64(c as f64 / connections as f64);
                let mut latencies = Vec::with_capacity(per_connection);
                let mut errors = 0usize;
                let mut free_at = start;
                for i in 0..per_connection {
                    let due = start + offset + interval * i as u32;
                    let now = Instant::now();
                    if now < due {
                        std::thread::sleep(due - now);
                    }
                    let sent = Instant::now();
                    // Late because the server held the previous answer: count from `due`.
                    let clock = if free_at > due { due } else { sent };
                    if writer.write_all(request.as_bytes()).is_err() {
                        errors += per_connection - i;
                        break;
                    }
                    match read_response(&mut reader) {
                        Ok(200) => {}
                        Ok(_) => errors += 1,
                        Err(_) => {
                            errors += per_connection - i;
                            break;
                        }
                    }
                    free_at = Instant::now();
                    latencies.push(free_at.duration_since(clock).as_micros() as u32);
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e) = t.join().expect("thread");
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        if all.is_empty() {
            0
        } else {
            all[((all.len() - 1) as f64 * p).round() as usize]
        }
    };
    println!(
        "{{\"requests\": {}, \"errors\": {}, \"rate\": {:.1}, \"p50\": {}, \"p90\": {}, \"p99\": {}, \"p999\": {}, \"max\": {}}}",
        all.len(),
        errors,
        all.len() as f64 / elapsed,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(0.999),
        all.last().copied().unwrap_or(0)
    );
}
