"""Go, Rust and Java (conformance, every backend): the hostile-program suite written in each
language, run with exactly the policy's limits. C and C++ have theirs in test_native.py; the
thread bombs, memory hogs and endless loops of every compiled language are in
test_languages.py."""

from __future__ import annotations

import pytest

from crucible_ray.models import EvalRequest

# 1 GiB of "x", in 1 MiB writes.
FLOOD = {
    "go": 'package main\nimport ("bytes";"os")\nfunc main() { b := bytes.Repeat([]byte("x"),'
    " 1<<20); for i := 0; i < 1024; i++ { if _, err := os.Stdout.Write(b); err != nil {"
    " return } } }",
    "rust": "use std::io::Write;\nfn main() { let b = vec![b'x'; 1 << 20];"
    " let mut o = std::io::stdout().lock();"
    " for _ in 0..1024 { if o.write_all(&b).is_err() { break; } } }",
    "java": "public class Main { public static void main(String[] a) {"
    " byte[] b = new byte[1 << 20]; java.util.Arrays.fill(b, (byte) 'x');"
    " for (int i = 0; i < 1024 && !System.out.checkError(); i++)"
    " System.out.write(b, 0, b.length); System.out.flush(); } }",
}
# Each line says whether the attempt succeeded: a TCP connection out, becoming root, reading
# /etc/shadow, writing to the root filesystem, filling /tmp with 512 MiB.
ESCAPES = {
    "go": """package main
import ("fmt";"net";"os";"syscall";"time")
func main() {
    _, err := net.DialTimeout("tcp", "1.1.1.1:53", 2*time.Second)
    fmt.Println("connect", err == nil)
    fmt.Println("setuid", syscall.Setuid(0) == nil)
    _, err = os.ReadFile("/etc/shadow")
    fmt.Println("shadow", err == nil)
    _, err = os.OpenFile("/escape", os.O_WRONLY|os.O_CREATE, 0644)
    fmt.Println("root", err == nil)
    f, _ := os.Create("/tmp/fill")
    mb, n := make([]byte, 1<<20), 0
    for ; n < 512; n++ { if _, err := f.Write(mb); err != nil { break } }
    fmt.Println("fill", n == 512)
}""",
    "rust": """use std::io::Write;
extern "C" { fn setuid(uid: u32) -> i32; }
fn main() {
    let to = "1.1.1.1:53".parse::<std::net::SocketAddr>().unwrap();
    let out = std::net::TcpStream::connect_timeout(&to, std::time::Duration::from_secs(2));
    println!("connect {}", out.is_ok());
    println!("setuid {}", unsafe { setuid(0) } == 0);
    println!("shadow {}", std::fs::read("/etc/shadow").is_ok());
    println!("root {}", std::fs::File::create("/escape").is_ok());
    let mut f = std::fs::File::create("/tmp/fill").unwrap();
    let (mb, mut n) = (vec![0u8; 1 << 20], 0);
    while n < 512 && f.write_all(&mb).is_ok() { n += 1; }
    println!("fill {}", n == 512);
}""",
    "java": """import java.io.*;
import java.net.*;
public class Main {
  public static void main(String[] a) {
    boolean out;
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("1.1.1.1", 53), 2000);
      out = true;
    } catch (IOException e) { out = false; }
    System.out.println("connect " + out);
    System.out.println("setuid false");  // the JVM has no setuid: nothing to try
    boolean shadow;
    try (FileInputStream in = new FileInputStream("/etc/shadow")) { shadow = true; }
    catch (IOException e) { shadow = false; }
    System.out.println("shadow " + shadow);
    boolean root;
    try (FileOutputStream o = new FileOutputStream("/escape")) { root = true; }
    catch (IOException e) { root = false; }
    System.out.println("root " + root);
    int n = 0;
    byte[] mb = new byte[1 << 20];
    try (FileOutputStream o = new FileOutputStream("/tmp/fill")) {
      for (; n < 512; n++) { o.write(mb); o.flush(); }
    } catch (IOException e) { }
    System.out.println("fill " + (n == 512));
  }
}""",
}


@pytest.fixture(params=sorted(FLOOD))
def language(request) -> str:
    return request.param


def test_output_flood_is_capped(runner, language):
    result = runner.run(EvalRequest(code=FLOOD[language], language=language, timeout_s=30))
    assert result.truncated and len(result.stdout) == 1 << 20, (len(result.stdout), result)


def test_no_network_no_privileges_no_host_files_and_bounded_disk(runner, language):
    result = runner.run(EvalRequest(code=ESCAPES[language], language=language, timeout_s=20))
    assert result.status == "succeeded", result
    assert result.stdout.splitlines() == [
        "connect false", "setuid false", "shadow false", "root false", "fill false",
    ], result  # fmt: skip
