//! Where does the head end? Our response against the post's second draft,
//! which has one "\r\n" too few before the body.
//! Run it with `cargo run -p wire --example slip`.

// ANCHOR: slip
/// Splits a response at the first blank line: (head, body). `None` when
/// there is no blank line, so a client is still waiting for the head to end.
fn split(response: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((&response[..end + 4], &response[end + 4..]))
}

fn main() {
    let slip: &[u8] =
        b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 11\r\nHello world";

    let (head, body) = split(wire::RESPONSE).expect("our head ends");
    println!(
        "ours: {} bytes = {} of head + {} of body",
        wire::RESPONSE.len(),
        head.len(),
        body.len()
    );
    assert_eq!(body, b"Hello world");

    // In the slip, "Hello world" is one more header line, and the blank
    // line that would end the head never comes: the body is empty, however
    // many bytes arrived, and the 11 promised bytes never do.
    println!(
        "slip: {} bytes, head complete: {}",
        slip.len(),
        split(slip).is_some()
    );
    assert!(split(slip).is_none());
    assert_eq!(slip.len(), 67);
}
// ANCHOR_END: slip
