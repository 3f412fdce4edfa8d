#!/bin/sh
# Makes Sanctuary's sounds with sox (Debian's `sox`), from nothing but its synthesiser, so that
# they are ours to ship: released under CC0 like this script. Run it in this folder to make them
# again; `-R` makes the noise the same every time.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ui="-R -r 24000 -c 1 -b 16"
bed="-R -r 16000 -c 1 -b 16"

# Through a portal: a rising whoosh.
sox $ui -n "$tmp/whoosh.wav" synth 1.1 pinknoise sinc -a 40 300-3000 fade q 0.35 1.1 0.6 gain -12
sox $ui -n "$tmp/rise.wav" synth 1.1 sine 220-880 fade q 0.3 1.1 0.5 gain -20
sox -R -m "$tmp/whoosh.wav" "$tmp/rise.wav" portal.wav reverb 40 gain -n -6

# A build placed: a short wooden knock.
sox $ui -n "$tmp/knock.wav" synth 0.18 sine 160-90 fade 0 0.18 0.16 gain -8
sox $ui -n "$tmp/click.wav" synth 0.02 whitenoise lowpass 3000 fade 0 0.02 0.018 gain -14
sox -R -m "$tmp/knock.wav" "$tmp/click.wav" place.wav gain -n -6

# A payment: two plucked notes, like a coin.
sox -R -r 48000 -c 1 -b 16 -n "$tmp/first.wav" synth 0.5 pluck E6 fade 0 0.5 0.45 rate 24000
sox -R -r 48000 -c 1 -b 16 -n "$tmp/second.wav" synth 0.9 pluck B6 fade 0 0.9 0.8 rate 24000
sox -R "$tmp/first.wav" "$tmp/second.wav" payment.wav splice -q 0.12,0.05 gain -3 reverb 30 gain -n -6

# The lobby: soft air and a slow open fifth.
sox $bed -n "$tmp/air.wav" synth 8 brownnoise lowpass 500 tremolo 0.125 40 gain -n -28
sox $bed -n "$tmp/fifth.wav" synth 8 sine 110 sine 165 tremolo 0.25 30 gain -n -34
sox -R -m "$tmp/air.wav" "$tmp/fifth.wav" lobby.wav

# The city: a low distant rumble and a faint band of traffic.
sox $bed -n "$tmp/rumble.wav" synth 8 brownnoise lowpass 250 gain -n -24
sox $bed -n "$tmp/traffic.wav" synth 8 pinknoise band 900 400 tremolo 0.5 20 gain -n -38
sox -R -m "$tmp/rumble.wav" "$tmp/traffic.wav" city.wav

# A room: a quiet room tone.
sox $bed -n room.wav synth 8 brownnoise lowpass 180 gain -n -36
