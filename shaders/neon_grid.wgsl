// The city's neon grid: dark ground, glowing street edges, thin parcel borders and light
// pulses running down the streets. Everything is computed from the world position, so the
// ground is endless and every peer sees the same lines in the same places.

#import bevy_pbr::forward_io::VertexOutput
#import bevy_pbr::mesh_view_bindings::{globals, view}

struct NeonGrid {
    // Parcel borders.
    line_colour: vec4<f32>,
    // Street edges and pulses.
    street_colour: vec4<f32>,
    // The ground between the lines.
    base_colour: vec4<f32>,
    // x: parcel size, y: street width, z: parcels per block side, w: unused.
    dims: vec4<f32>,
    // rgb: the fog colour, w: the distance at which the fog hides everything.
    fog: vec4<f32>,
};

@group(#{MATERIAL_BIND_GROUP}) @binding(0) var<uniform> grid: NeonGrid;

// Coverage of a line of half-width `half_width` (metres) at distance `d` (metres), smoothed over
// `pixel` metres and dimmed when the line is thinner than a pixel so that it does not shimmer.
fn line_coverage(d: f32, half_width: f32, pixel: f32) -> f32 {
    let soft = max(pixel, 1e-4);
    let coverage = 1.0 - smoothstep(half_width, half_width + soft * 1.5, d);
    return coverage * clamp(half_width * 2.0 / soft, 0.0, 1.0);
}

@fragment
fn fragment(in: VertexOutput) -> @location(0) vec4<f32> {
    let p = in.world_position.xz;
    let parcel = grid.dims.x;
    let street = grid.dims.y;
    let per_block = grid.dims.z;
    let pitch = per_block * parcel + street;
    let pixel = fwidth(p);

    // Position inside the block cell, measured from the street centre line.
    let local = p - floor(p / pitch) * pitch;
    let to_centre = min(local, vec2<f32>(pitch) - local);
    let half_street = street * 0.5;
    let in_street = to_centre.x < half_street || to_centre.y < half_street;

    // Street edges: bright lines where the street meets the parcels.
    let edge_distance = abs(to_centre - vec2<f32>(half_street));
    let edge = max(line_coverage(edge_distance.x, 0.09, pixel.x), line_coverage(edge_distance.y, 0.09, pixel.y));

    // Parcel borders inside a block.
    let inner = (local - vec2<f32>(half_street)) / parcel;
    let parcel_distance = abs(fract(inner + 0.5) - 0.5) * parcel;
    var border = max(line_coverage(parcel_distance.x, 0.05, pixel.x), line_coverage(parcel_distance.y, 0.05, pixel.y));
    if in_street {
        border = 0.0;
    }

    // Pulses of light running along the street centre lines.
    let along = select(p.x, p.y, to_centre.x < to_centre.y);
    let pulse_phase = fract((along - globals.time * 18.0) / 40.0);
    let on_centre = min(to_centre.x, to_centre.y);
    let pulse = line_coverage(on_centre, 0.12, max(pixel.x, pixel.y)) * smoothstep(0.85, 1.0, pulse_phase);

    var colour = grid.base_colour.rgb;
    if in_street {
        colour = colour * 0.45;
    }
    colour += grid.street_colour.rgb * (edge * 4.0 + pulse * 6.0);
    colour += grid.line_colour.rgb * border * 2.5;

    // Distance fog toward the region's sky, as the rest of the scene gets from Bevy's fog.
    let distance = length(in.world_position.xyz - view.world_position.xyz);
    let fog = clamp(distance / max(grid.fog.w, 1.0), 0.0, 1.0);
    colour = mix(colour, grid.fog.rgb, fog * fog);
    return vec4<f32>(colour, 1.0);
}
