// CPU accounting from /proc (Linux; elsewhere every function returns
// undefined). It tells a run that measured the code from one where something
// else on the machine took the server's core.
import { readFileSync } from 'node:fs'

// /proc reports CPU time in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_SECOND = 100

/**
 * CPU seconds (user + system) a live process has used. A saturated server
 * pinned to a core uses ~1 CPU second per second; less when something else
 * takes that core.
 */
export function processCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The fields after the command name (which may hold spaces) in
    // parentheses; utime and stime are fields 14 and 15 of the line.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
  } catch {
    return undefined
  }
}

/** Busy seconds (everything but idle and iowait) of one core since boot, from /proc/stat. */
export function coreBusySeconds(core) {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${core} `))
    if (line === undefined) return undefined
    // user nice system idle iowait irq softirq steal ...
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number)
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND
  } catch {
    return undefined
  }
}
