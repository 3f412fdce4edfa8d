// Screens: the cinema's film, the lecture hall's slides and the meeting room's display. Until
// shared video arrives over the network, each shows a moving picture of its own so that the room
// reads as what it is.

#import bevy_pbr::forward_io::VertexOutput
#import bevy_pbr::mesh_view_bindings::globals

struct Screen {
    // The screen's main colour.
    tint: vec4<f32>,
    // x: 0 film, 1 slides, 2 display; y: brightness.
    mode: vec4<f32>,
};

@group(#{MATERIAL_BIND_GROUP}) @binding(0) var<uniform> screen: Screen;

fn film(uv: vec2<f32>, t: f32) -> vec3<f32> {
    // A slow sunset over hills, with a moving sun.
    let sky = mix(vec3<f32>(0.25, 0.35, 0.9), vec3<f32>(1.0, 0.55, 0.25), uv.y);
    let sun_centre = vec2<f32>(0.3 + 0.4 * fract(t * 0.02), 0.55);
    let sun = 1.0 - smoothstep(0.07, 0.09, distance(uv * vec2<f32>(2.2, 1.0), sun_centre * vec2<f32>(2.2, 1.0)));
    let hills = 0.72 + 0.06 * sin(uv.x * 9.0 + t * 0.3) + 0.04 * sin(uv.x * 23.0);
    var colour = sky + vec3<f32>(1.0, 0.9, 0.6) * sun;
    if uv.y > hills {
        colour = vec3<f32>(0.08, 0.12, 0.1);
    }
    return colour;
}

fn slides(uv: vec2<f32>, tint: vec3<f32>) -> vec3<f32> {
    // A title bar and bullet lines.
    var colour = vec3<f32>(0.95, 0.97, 0.95);
    if uv.y < 0.2 {
        colour = tint;
    } else {
        let row = fract((uv.y - 0.25) * 6.0);
        let bullet = step(0.1, uv.x) * step(uv.x, 0.13 + 0.6 * fract(sin(floor(uv.y * 6.0) * 12.9) * 43.7));
        if row > 0.35 && row < 0.6 && uv.y > 0.28 && uv.y < 0.9 && bullet > 0.5 {
            colour = vec3<f32>(0.2, 0.25, 0.3);
        }
    }
    return colour;
}

fn display(uv: vec2<f32>, tint: vec3<f32>, t: f32) -> vec3<f32> {
    // Tiles of a shared dashboard with a moving bar chart.
    let cell = fract(uv * vec2<f32>(3.0, 2.0));
    let id = floor(uv * vec2<f32>(3.0, 2.0));
    var colour = tint * 0.35;
    let border = step(0.05, cell.x) * step(cell.x, 0.95) * step(0.06, cell.y) * step(cell.y, 0.94);
    let height = 0.3 + 0.5 * fract(sin(id.x * 7.0 + id.y * 3.0 + floor(cell.x * 6.0) + floor(t)) * 91.3);
    if border > 0.5 && (1.0 - cell.y) < height && fract(cell.x * 6.0) < 0.7 {
        colour = tint * 1.4;
    }
    return colour;
}

@fragment
fn fragment(in: VertexOutput) -> @location(0) vec4<f32> {
    // Measure v from the top of the screen, as pictures are drawn.
    let uv = vec2<f32>(in.uv.x, 1.0 - in.uv.y);
    let t = globals.time;
    var colour: vec3<f32>;
    if screen.mode.x < 0.5 {
        colour = film(uv, t);
    } else if screen.mode.x < 1.5 {
        colour = slides(uv, screen.tint.rgb);
    } else {
        colour = display(uv, screen.tint.rgb, t);
    }
    return vec4<f32>(colour * screen.mode.y, 1.0);
}
