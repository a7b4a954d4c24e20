//! The listening TCP ports of a sandbox, as its init finds them: `/proc/net/tcp` and `tcp6`
//! of the init's own network namespace (the sandbox's), sockets in the `LISTEN` state, and
//! the process holding each one found through `/proc/<pid>/fd`, within fixed bounds.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::wire::{ListeningPort, MAX_PORTS, MAX_PROCESS_NAME};

/// `st` of a socket in the `LISTEN` state in `/proc/net/tcp*`.
const LISTEN: &str = "0A";
/// The most processes and descriptors per process looked through to name a port's process:
/// the scan is a convenience and must stay cheap in a sandbox with a process bomb in it.
const MAX_PROCESSES: usize = 4096;
const MAX_FDS_PER_PROCESS: usize = 4096;
/// The most lines of a `/proc/net/tcp*` file read.
const MAX_LINES: usize = 65_536;

/// The listening ports in one `/proc/net/tcp*` table, by port, with their socket inodes.
pub fn parse_table(table: &str, into: &mut BTreeMap<u16, Vec<u64>>) {
    for line in table.lines().skip(1).take(MAX_LINES) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state), Some(inode)) = (fields.get(1), fields.get(3), fields.get(9))
        else {
            continue;
        };
        if *state != LISTEN {
            continue;
        }
        let Some(port) = local.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
        else {
            continue;
        };
        let inode = inode.parse::<u64>().unwrap_or(0);
        into.entry(port).or_default().push(inode);
    }
}

/// The ports listening in this process's network namespace but `skip` (the init's own),
/// at most [`MAX_PORTS`], each with the name of a process that holds it where one is found.
pub fn listening(skip: &[u16]) -> Vec<ListeningPort> {
    let mut by_port = BTreeMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            parse_table(&text, &mut by_port);
        }
    }
    by_port.retain(|port, _| !skip.contains(port));
    let wanted: HashMap<u64, u16> = by_port
        .iter()
        .take(MAX_PORTS)
        .flat_map(|(port, inodes)| inodes.iter().filter(|i| **i != 0).map(|i| (*i, *port)))
        .collect();
    let names = if wanted.is_empty() { HashMap::new() } else { owners(&wanted) };
    by_port
        .into_keys()
        .take(MAX_PORTS)
        .map(|port| ListeningPort { port, process: names.get(&port).cloned() })
        .collect()
}

/// For each wanted socket inode's port, the `comm` of a process with a descriptor on it.
fn owners(wanted: &HashMap<u64, u16>) -> HashMap<u16, String> {
    let mut found = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return found };
    for entry in procs.flatten().take(MAX_PROCESSES) {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let dir = Path::new("/proc").join(pid);
        let Ok(fds) = std::fs::read_dir(dir.join("fd")) else { continue };
        for fd in fds.flatten().take(MAX_FDS_PER_PROCESS) {
            let Ok(target) = std::fs::read_link(fd.path()) else { continue };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            if let Some(port) = wanted.get(&inode)
                && !found.contains_key(port)
                && let Ok(comm) = std::fs::read_to_string(dir.join("comm"))
            {
                found.insert(*port, clean_name(&comm));
            }
        }
        if found.len() == wanted.values().collect::<std::collections::HashSet<_>>().len() {
            break;
        }
    }
    found
}

/// A process name as shown: printable, trimmed, at most [`MAX_PROCESS_NAME`] characters.
/// The name is the agent's to choose, so the server applies this again to what it reads.
pub fn clean_name(name: &str) -> String {
    name.trim().chars().filter(|c| !c.is_control()).take(MAX_PROCESS_NAME).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_gives_the_listening_ports_of_both_families_and_nothing_else() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0C38 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 17 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F40 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000  1000        0 99 1 0000000000000000 100 0 0 10 0
   3: garbage
";
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5151 1 0000000000000000 100 0 0 10 0
";
        let mut ports = BTreeMap::new();
        parse_table(tcp, &mut ports);
        parse_table(tcp6, &mut ports);
        assert_eq!(ports.keys().copied().collect::<Vec<_>>(), [3128, 8000, 8080]);
        assert_eq!(ports[&8000], [4242], "the established connection on 8000 is not listed");
        assert_eq!(ports[&8080], [5151]);
    }

    #[test]
    fn names_are_printable_and_short() {
        assert_eq!(clean_name("python3\n"), "python3");
        assert_eq!(clean_name("a\u{1b}[31mb"), "a[31mb");
        assert_eq!(clean_name(&"x".repeat(500)).len(), MAX_PROCESS_NAME);
    }
}
