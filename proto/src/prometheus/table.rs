//! The table: every well-known metric's Prometheus family, type, scaling, help and
//! node_exporter equivalent, as one exhaustive match (a new metric does not compile until it
//! is mapped here).

use super::{Mapping, Type};
use crate::metrics::Metric;

const fn g(family: &'static str, help: &'static str, ne: Option<&'static str>) -> Mapping {
    Mapping {
        family,
        kind: Type::Gauge,
        scale: 1.0,
        help,
        node_exporter: ne,
    }
}

const fn scaled(m: Mapping, scale: f64) -> Mapping {
    Mapping { scale, ..m }
}

const fn c(family: &'static str, help: &'static str, ne: Option<&'static str>) -> Mapping {
    Mapping {
        family,
        kind: Type::Counter,
        scale: 1.0,
        help,
        node_exporter: ne,
    }
}

/// Percent to ratio.
const PCT: f64 = 0.01;

/// The Prometheus family of a well-known metric.
pub fn mapping(m: Metric) -> Mapping {
    use Metric::*;
    match m {
        CpuUsagePct => scaled(
            g(
                "meshmon_cpu_usage_ratio",
                "CPU busy time over the last interval, all cores, 0 to 1.",
                None,
            ),
            PCT,
        ),
        CpuCoreUsagePct => scaled(
            g(
                "meshmon_cpu_core_usage_ratio",
                "CPU busy time of one core over the last interval, 0 to 1.",
                None,
            ),
            PCT,
        ),
        CpuLoad1 => g(
            "meshmon_load1",
            "1-minute load average.",
            Some("node_load1"),
        ),
        CpuLoad5 => g(
            "meshmon_load5",
            "5-minute load average.",
            Some("node_load5"),
        ),
        CpuLoad15 => g(
            "meshmon_load15",
            "15-minute load average.",
            Some("node_load15"),
        ),
        CpuFreqMhz => scaled(
            g(
                "meshmon_cpu_frequency_hertz",
                "Current CPU frequency.",
                Some("node_cpu_scaling_frequency_hertz"),
            ),
            1e6,
        ),
        CpuTempC => g(
            "meshmon_cpu_temperature_celsius",
            "CPU temperature sensor reading.",
            Some("node_hwmon_temp_celsius"),
        ),
        MemUsedBytes => g(
            "meshmon_memory_used_bytes",
            "Memory in use (total minus available).",
            None,
        ),
        MemTotalBytes => g(
            "meshmon_memory_size_bytes",
            "Physical memory.",
            Some("node_memory_MemTotal_bytes"),
        ),
        MemAvailableBytes => g(
            "meshmon_memory_available_bytes",
            "Memory available for new work without swapping.",
            Some("node_memory_MemAvailable_bytes"),
        ),
        MemUsedPct => scaled(
            g(
                "meshmon_memory_used_ratio",
                "Memory in use over physical memory, 0 to 1.",
                None,
            ),
            PCT,
        ),
        SwapUsedBytes => g("meshmon_swap_used_bytes", "Swap in use.", None),
        SwapTotalBytes => g(
            "meshmon_swap_size_bytes",
            "Swap space.",
            Some("node_memory_SwapTotal_bytes"),
        ),
        DiskUsedBytes => g(
            "meshmon_filesystem_used_bytes",
            "Bytes used on the filesystem mounted at 'mount'.",
            None,
        ),
        DiskTotalBytes => g(
            "meshmon_filesystem_size_bytes",
            "Size of the filesystem mounted at 'mount'.",
            Some("node_filesystem_size_bytes"),
        ),
        DiskUsedPct => scaled(
            g(
                "meshmon_filesystem_used_ratio",
                "Used over size of the filesystem mounted at 'mount', 0 to 1.",
                None,
            ),
            PCT,
        ),
        DiskInodesUsed => g(
            "meshmon_filesystem_inodes_used",
            "Inodes in use on the filesystem mounted at 'mount'.",
            None,
        ),
        DiskInodesTotal => g(
            "meshmon_filesystem_inodes",
            "Inodes of the filesystem mounted at 'mount'.",
            Some("node_filesystem_files"),
        ),
        DiskInodesUsedPct => scaled(
            g(
                "meshmon_filesystem_inodes_used_ratio",
                "Inodes in use over inodes of the filesystem mounted at 'mount', 0 to 1.",
                None,
            ),
            PCT,
        ),
        NetRxBytesPerS => g(
            "meshmon_network_receive_bytes_per_second",
            "Bytes received per second on 'iface' over the last interval (rate() of meshmon_network_receive_bytes_total is the Prometheus way).",
            None,
        ),
        NetTxBytesPerS => g(
            "meshmon_network_transmit_bytes_per_second",
            "Bytes sent per second on 'iface' over the last interval (rate() of meshmon_network_transmit_bytes_total is the Prometheus way).",
            None,
        ),
        NetRxBytes => c(
            "meshmon_network_receive_bytes_total",
            "Bytes received on 'iface' (the kernel's counter).",
            Some("node_network_receive_bytes_total"),
        ),
        NetTxBytes => c(
            "meshmon_network_transmit_bytes_total",
            "Bytes sent on 'iface' (the kernel's counter).",
            Some("node_network_transmit_bytes_total"),
        ),
        NetRxPackets => c(
            "meshmon_network_receive_packets_total",
            "Packets received on 'iface' (the kernel's counter).",
            Some("node_network_receive_packets_total"),
        ),
        NetTxPackets => c(
            "meshmon_network_transmit_packets_total",
            "Packets sent on 'iface' (the kernel's counter).",
            Some("node_network_transmit_packets_total"),
        ),
        HostUptimeS => g(
            "meshmon_host_uptime_seconds",
            "Time since the host booted.",
            None,
        ),
        HostBootTimeS => g(
            "meshmon_host_boot_time_seconds",
            "When the host booted, seconds since the Unix epoch.",
            Some("node_boot_time_seconds"),
        ),
        HostClockOffsetMs => scaled(
            g(
                "meshmon_host_clock_offset_seconds",
                "The host's wall clock minus the median of its mesh neighbours' clocks.",
                Some("node_timex_offset_seconds"),
            ),
            0.001,
        ),
        GpuUtilPct => scaled(
            g(
                "meshmon_gpu_utilization_ratio",
                "GPU busy time over the last interval, 0 to 1.",
                None,
            ),
            PCT,
        ),
        GpuMemUsedBytes => g("meshmon_gpu_memory_used_bytes", "GPU memory in use.", None),
        GpuMemTotalBytes => g("meshmon_gpu_memory_size_bytes", "GPU memory.", None),
        GpuTempC => g("meshmon_gpu_temperature_celsius", "GPU temperature.", None),
        GpuPowerW => g("meshmon_gpu_power_watts", "GPU power draw.", None),
        DockerDirBytes => g(
            "meshmon_docker_dir_bytes",
            "Size of the Docker data directory.",
            None,
        ),
        SmartPassed => g(
            "meshmon_smart_passed",
            "1 if the device's SMART self-assessment passed, else 0.",
            None,
        ),
        SmartTempC => g(
            "meshmon_smart_temperature_celsius",
            "Device temperature reported by SMART.",
            None,
        ),
        SmartPowerOnHours => scaled(
            g(
                "meshmon_smart_power_on_seconds",
                "Device power-on time reported by SMART (whole hours).",
                None,
            ),
            3600.0,
        ),
        SmartPercentageUsed => scaled(
            g(
                "meshmon_smart_used_endurance_ratio",
                "NVMe 'percentage used' of the device's rated endurance, 0 to 1 (may exceed 1).",
                None,
            ),
            PCT,
        ),
        SmartMediaErrors => g(
            "meshmon_smart_media_errors",
            "Media and data integrity errors reported by SMART.",
            None,
        ),
        SmartCriticalWarning => g(
            "meshmon_smart_critical_warning",
            "NVMe critical warning bits reported by SMART (0 = none).",
            None,
        ),
        SystemdActive => g(
            "meshmon_systemd_unit_active",
            "1 if the systemd unit is active, else 0.",
            Some("node_systemd_unit_state"),
        ),
        SystemdMemBytes => g(
            "meshmon_systemd_unit_memory_bytes",
            "Memory of the systemd unit's cgroup.",
            None,
        ),
        SystemdCpuPct => scaled(
            g(
                "meshmon_systemd_unit_cpu_usage_ratio",
                "CPU time of the systemd unit over the last interval, in cores (1 = one core busy).",
                None,
            ),
            PCT,
        ),
        CheckUp => g(
            "meshmon_check_up",
            "1 if the last run of the HTTP check succeeded, else 0.",
            Some("probe_success"),
        ),
        CheckLatencyMs => scaled(
            g(
                "meshmon_check_duration_seconds",
                "Duration of the last run of the HTTP check.",
                Some("probe_duration_seconds"),
            ),
            0.001,
        ),
        CheckStatus => g(
            "meshmon_check_http_status_code",
            "HTTP status code of the last run of the check.",
            Some("probe_http_status_code"),
        ),
        CheckCertDaysLeft => scaled(
            g(
                "meshmon_check_cert_remaining_seconds",
                "Time until the check's TLS certificate expires (whole days).",
                None,
            ),
            86_400.0,
        ),
        MeshPeers => g(
            "meshmon_mesh_peers",
            "Links of the host's meshmon node that are up.",
            None,
        ),
        MeshFramesInPerS => g(
            "meshmon_mesh_frames_received_per_second",
            "Frames the host's meshmon node received per second over the last interval.",
            None,
        ),
        MeshFramesIn => c(
            "meshmon_mesh_frames_received_total",
            "Frames the host's meshmon node received since it started.",
            None,
        ),
        MeshFramesDropped => c(
            "meshmon_mesh_frames_dropped_total",
            "Frames the host's meshmon node dropped since it started.",
            None,
        ),
        MeshAuthFailures => c(
            "meshmon_mesh_auth_failures_total",
            "Frames that failed authentication on the host's meshmon node since it started.",
            None,
        ),
        MeshNameConflicts => c(
            "meshmon_mesh_name_conflicts_total",
            "Frames the host's meshmon node received from another live host using its name, since it started.",
            None,
        ),
        RemoteWriteLagS => g(
            "meshmon_remote_write_lag_seconds",
            "Age of the newest sample the remote-write receiver accepted from this dashboard node.",
            None,
        ),
        RemoteWriteQueueSamples => g(
            "meshmon_remote_write_queue_samples",
            "Samples waiting in this dashboard node's remote-write queue.",
            None,
        ),
        RemoteWriteSamplesSent => c(
            "meshmon_remote_write_samples_sent_total",
            "Samples the remote-write receiver accepted from this dashboard node since it started.",
            None,
        ),
        RemoteWriteSamplesDropped => c(
            "meshmon_remote_write_samples_dropped_total",
            "Samples dropped from the full remote-write queue since the node started (read back from the store, up to 1 hour old).",
            None,
        ),
        RemoteWriteSamplesRejected => c(
            "meshmon_remote_write_samples_rejected_total",
            "Samples the remote-write receiver refused for good (HTTP 4xx) since the node started.",
            None,
        ),
        RemoteWriteFailures => c(
            "meshmon_remote_write_failures_total",
            "Remote-write requests that failed and were retried since the node started.",
            None,
        ),
        // Disk I/O, network errors, pressure, OOM kills (issue 16).
        DiskioReadBytesPerS => g(
            "meshmon_disk_read_bytes_per_second",
            "Bytes read per second from block device 'device' over the last interval.",
            None,
        ),
        DiskioWriteBytesPerS => g(
            "meshmon_disk_written_bytes_per_second",
            "Bytes written per second to block device 'device' over the last interval.",
            None,
        ),
        DiskioIops => g(
            "meshmon_disk_io_operations_per_second",
            "Reads and writes completed per second on block device 'device' over the last interval.",
            None,
        ),
        DiskioReadIops => g(
            "meshmon_disk_reads_completed_per_second",
            "Reads completed per second on block device 'device' over the last interval.",
            None,
        ),
        DiskioWriteIops => g(
            "meshmon_disk_writes_completed_per_second",
            "Writes completed per second on block device 'device' over the last interval.",
            None,
        ),
        DiskioUtilPct => scaled(
            g(
                "meshmon_disk_io_utilization_ratio",
                "Share of the last interval block device 'device' had I/O in flight (io_ticks), 0 to 1.",
                None,
            ),
            PCT,
        ),
        DiskioAwaitMs => scaled(
            g(
                "meshmon_disk_io_await_seconds",
                "Average time per I/O completed on block device 'device' over the last interval, queueing included (iostat's await).",
                None,
            ),
            0.001,
        ),
        NetErrors => c(
            "meshmon_network_errors_total",
            "Receive plus transmit errors on 'iface' (the kernel's counters).",
            None,
        ),
        NetDrops => c(
            "meshmon_network_drops_total",
            "Received plus transmitted packets dropped on 'iface' (the kernel's counters).",
            None,
        ),
        NetRxErrorsPerS => g(
            "meshmon_network_receive_errors_per_second",
            "Receive errors per second on 'iface' over the last interval.",
            None,
        ),
        NetTxErrorsPerS => g(
            "meshmon_network_transmit_errors_per_second",
            "Transmit errors per second on 'iface' over the last interval.",
            None,
        ),
        NetRxDropsPerS => g(
            "meshmon_network_receive_drops_per_second",
            "Received packets dropped per second on 'iface' over the last interval.",
            None,
        ),
        NetTxDropsPerS => g(
            "meshmon_network_transmit_drops_per_second",
            "Packets dropped on transmit per second on 'iface' over the last interval.",
            None,
        ),
        PsiCpuSomePct => scaled(
            g(
                "meshmon_pressure_cpu_some_ratio",
                "Share of the last 10 s in which some runnable task waited for a CPU (PSI avg10), 0 to 1.",
                None,
            ),
            PCT,
        ),
        PsiMemSomePct => scaled(
            g(
                "meshmon_pressure_memory_some_ratio",
                "Share of the last 10 s in which some task stalled on memory (PSI avg10), 0 to 1.",
                None,
            ),
            PCT,
        ),
        PsiMemFullPct => scaled(
            g(
                "meshmon_pressure_memory_full_ratio",
                "Share of the last 10 s in which all non-idle tasks stalled on memory (PSI avg10), 0 to 1.",
                None,
            ),
            PCT,
        ),
        PsiIoSomePct => scaled(
            g(
                "meshmon_pressure_io_some_ratio",
                "Share of the last 10 s in which some task stalled on I/O (PSI avg10), 0 to 1.",
                None,
            ),
            PCT,
        ),
        PsiIoFullPct => scaled(
            g(
                "meshmon_pressure_io_full_ratio",
                "Share of the last 10 s in which all non-idle tasks stalled on I/O (PSI avg10), 0 to 1.",
                None,
            ),
            PCT,
        ),
        MemOomKills => c(
            "meshmon_memory_oom_kills_total",
            "Processes killed by the kernel's OOM killer since boot (/proc/vmstat oom_kill).",
            Some("node_vmstat_oom_kill"),
        ),
        // Containers (collect.containers), label `container`.
        ContainerCpuPct => scaled(
            g(
                "meshmon_container_cpu_usage_ratio",
                "CPU time of the container over the last interval, in cores (1 = one core busy).",
                None,
            ),
            PCT,
        ),
        ContainerMemBytes => g(
            "meshmon_container_memory_bytes",
            "Memory charged to the container's cgroup.",
            None,
        ),
        ContainerMemLimitBytes => g(
            "meshmon_container_memory_limit_bytes",
            "Memory limit of the container's cgroup (absent when unlimited).",
            None,
        ),
        ContainerNetRxBytesPerS => g(
            "meshmon_container_network_receive_bytes_per_second",
            "Bytes per second received in the container's network namespace (all interfaces but lo).",
            None,
        ),
        ContainerNetTxBytesPerS => g(
            "meshmon_container_network_transmit_bytes_per_second",
            "Bytes per second sent from the container's network namespace (all interfaces but lo).",
            None,
        ),
        ContainerBlkioReadBytesPerS => g(
            "meshmon_container_blkio_read_bytes_per_second",
            "Bytes per second the container read from block devices.",
            None,
        ),
        ContainerBlkioWriteBytesPerS => g(
            "meshmon_container_blkio_write_bytes_per_second",
            "Bytes per second the container wrote to block devices.",
            None,
        ),
        ContainerRunning => g(
            "meshmon_container_running",
            "1 if the container is running, else 0 (for container=\"other\": how many folded containers run).",
            None,
        ),
        ContainerHealthy => g(
            "meshmon_container_healthy",
            "1 if the container's healthcheck passes, 0 if it fails (absent without a healthcheck).",
            None,
        ),
        ContainerRestarts => c(
            "meshmon_container_restarts_total",
            "Times the engine restarted the container (its restart policy).",
            None,
        ),
        ContainerInfo => g(
            "meshmon_container_info",
            "Always 1; the container's image and state as labels.",
            None,
        ),
        // Processes (collect.top_processes, collect.processes), label `name`.
        ProcCpuPct => scaled(
            g(
                "meshmon_process_cpu_usage_ratio",
                "CPU time of the processes of this name over the last interval, in cores (1 = one core busy); top N by CPU or memory, the rest under name=\"other\".",
                None,
            ),
            PCT,
        ),
        ProcMemBytes => g(
            "meshmon_process_resident_memory_bytes",
            "Resident memory (RSS) of the processes of this name; top N by CPU or memory, the rest under name=\"other\".",
            None,
        ),
        ProcIoReadBytesPerS => g(
            "meshmon_process_io_read_bytes_per_second",
            "Bytes the processes of this name read from storage per second over the last interval (where /proc/PID/io is readable).",
            None,
        ),
        ProcIoWriteBytesPerS => g(
            "meshmon_process_io_write_bytes_per_second",
            "Bytes the processes of this name wrote to storage per second over the last interval (where /proc/PID/io is readable).",
            None,
        ),
        ProcCount => g(
            "meshmon_process_count",
            "Running processes of this name (names listed in collect.processes; 0 when none runs).",
            None,
        ),
    }
}
