/** A few line icons as inline SVG: emoji glyphs are missing from many Linux font sets. */
const PATHS: Record<string, string> = {
  newFile: 'M4 1.5h5l3 3V14.5H4z M9 1.5v3h3 M8 7.5v5 M5.5 10h5',
  newFolder: 'M1.5 3.5h4l1.5 1.5h7.5v8.5h-13z M8 7v5 M5.5 9.5h5',
  refresh: 'M13 8a5 5 0 1 1-1.5-3.6 M13 2.5v2.5h-2.5',
  rename: 'M10.5 2.5l3 3-8 8h-3v-3z',
  trash: 'M2.5 4h11 M6 4V2.5h4V4 M4 4l.8 10h6.4L12 4',
  plus: 'M8 3v10 M3 8h10',
  close: 'M4 4l8 8 M12 4l-8 8',
};

export function icon(name: keyof typeof PATHS): SVGSVGElement {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('width', '14');
  svg.setAttribute('height', '14');
  svg.setAttribute('aria-hidden', 'true');
  svg.classList.add('icon-svg');
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', PATHS[name]);
  path.setAttribute('fill', 'none');
  path.setAttribute('stroke', 'currentColor');
  path.setAttribute('stroke-width', '1.2');
  path.setAttribute('stroke-linecap', 'round');
  path.setAttribute('stroke-linejoin', 'round');
  svg.append(path);
  return svg;
}
