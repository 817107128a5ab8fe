#!/usr/bin/env bash
# A room with a microphone and a speaker on a machine with no sound card: a user-space
# PulseAudio server with two null sinks, "spk" (what Iris plays) and "room" (what the room
# hears), and a microphone "mic" on the room's monitor. cpal reaches them through ALSA's pulse
# plugin, so `iris listen` runs on real, clock-paced ALSA devices.
#   deploy/pulse-room.sh start DIR   prints the PULSE_SERVER value to export
#   deploy/pulse-room.sh echo DIR MS   the speaker heard in the room MS ms later (an echo path)
#   deploy/pulse-room.sh stop DIR
# Needs Debian's pulseaudio pulseaudio-utils libasound2-plugins.
set -euo pipefail
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
export PULSE_RUNTIME_PATH="$dir" PULSE_SERVER="unix:$dir/native"
case "$cmd" in
start)
    cat > "$dir/room.pa" <<PA
load-module module-native-protocol-unix auth-anonymous=1 socket=$dir/native
load-module module-null-sink sink_name=spk rate=16000 channels=1 norewinds=1
load-module module-null-sink sink_name=room rate=16000 channels=1 norewinds=1
load-module module-remap-source source_name=mic master=room.monitor
set-default-sink spk
set-default-source mic
PA
    # Without norewinds a new stream makes a null sink rewind, and recordings lose their start.
    HOME="$dir" pulseaudio --daemonize=yes --exit-idle-time=-1 -n -F "$dir/room.pa" --log-target=file:"$dir/pulse.log" >&2
    for _ in $(seq 50); do
        pactl info >/dev/null 2>&1 && { echo "$PULSE_SERVER"; exit 0; }
        sleep 0.1
    done
    echo "error: PulseAudio did not start; see $dir/pulse.log" >&2
    exit 1
    ;;
echo)
    # adjust_time=0: one clock, as a sound card's speaker and microphone share. The loopback's
    # rate controller otherwise resamples the echo by a drifting ratio (about 70 ppm measured),
    # an echo path no single device has; AEC3's linear filter then removes about 8 dB of it
    # instead of 20 to 30 (`iris listen --record`, then `iris audio echo`).
    pactl load-module module-loopback source=spk.monitor sink=room latency_msec="$3" adjust_time=0 >/dev/null
    ;;
stop)
    pactl exit >/dev/null 2>&1 || true
    ;;
*)
    echo "usage: $0 start|stop DIR, or $0 echo DIR MS" >&2
    exit 2
    ;;
esac
