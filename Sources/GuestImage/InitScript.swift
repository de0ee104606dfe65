/// The guest's /init: a busybox shell script that mounts the kernel's file systems, loads the
/// modules the image was built for (there is no udev to do it), reports on the console, and
/// hands over to the agent. `cxllab.init=report` on the kernel command line makes it power
/// off after its report instead (a boot check needs nothing more); `cxllab.replay=FILE` makes
/// the agent replay recorded requests from FILE with no host (`cxllab bench`).
enum InitScript {
    static let agentPath = "/usr/bin/cxllab-agent"

    static func text() -> String {
        #"""
        #!/bin/busybox sh
        # cxllab guest init (generated; see Sources/GuestImage/InitScript.swift)
        export PATH=/usr/sbin:/usr/bin:/sbin:/bin
        /bin/busybox mkdir -p /proc /sys /dev /tmp /run
        /bin/busybox mount -t proc proc /proc
        /bin/busybox mount -t sysfs sysfs /sys
        /bin/busybox mount -t devtmpfs devtmpfs /dev
        /bin/busybox --install -s
        # What udev and systemd would add: bash's process substitution (ndctl's dax tests read
        # `< <(trace-cmd report)`) needs /dev/fd; debugfs and tracefs where the tools look.
        ln -s /proc/self/fd /dev/fd
        ln -s /proc/self/fd/0 /dev/stdin
        ln -s /proc/self/fd/1 /dev/stdout
        ln -s /proc/self/fd/2 /dev/stderr
        mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
        mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
        mount -t tmpfs tmpfs /tmp
        mount -t tmpfs tmpfs /run
        uptime() { cut -d' ' -f1 /proc/uptime; }
        echo "cxllab-init: kernel $(uname -r) at $(uptime) s"
        failed=""
        for module in $(cat /etc/cxllab/modules); do
          modprobe "$module" || failed="$failed $module"
        done
        [ -z "$failed" ] || echo "cxllab-init: could not load:$failed"
        echo "cxllab-init: modules loaded at $(uptime) s"
        case " $(cat /proc/cmdline) " in
          *" cxllab.init=report "*)
            for tool in ndctl daxctl cxl; do
              command -v $tool >/dev/null && echo "cxllab-init: $tool $($tool --version 2>&1)"
            done
            echo "cxllab-init: report done, powering off"
            poweroff -f ;;
        esac
        # A recipe that brings udev's daemon and rules gets what udev gives a distribution:
        # modules loaded by MODALIAS on hotplug, and /run/udev/queue while that is under way,
        # which libndctl and libcxl wait on (ndctl's tests). Other images have no udev: the
        # driver-order scenarios decide what loads when.
        if [ -d /etc/udev/rules.d ] && [ -x /lib/systemd/systemd-udevd ] \
            && /lib/systemd/systemd-udevd --daemon --resolve-names=never; then
          echo "cxllab-init: udev at $(uptime) s"
        fi
        replay=""
        for word in $(cat /proc/cmdline); do
          case "$word" in cxllab.replay=*) replay="${word#cxllab.replay=}" ;; esac
        done
        if [ -n "$replay" ] && [ -x /usr/bin/cxllab-agent ]; then
          echo "cxllab-init: replaying $replay at $(uptime) s"
          /usr/bin/cxllab-agent --replay "$replay"
        elif [ -x /usr/bin/cxllab-agent ]; then
          echo "cxllab-init: starting the agent at $(uptime) s"
          /usr/bin/cxllab-agent
          echo "cxllab-init: agent exited with status $?"
        else
          echo "cxllab-init: no agent in this image"
        fi
        poweroff -f
        """#
    }
}
