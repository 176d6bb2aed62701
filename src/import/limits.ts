/** Default largest image accepted, in pixels (a decompression-bomb guard; raise per call). */
export const DEFAULT_MAX_PIXELS = 2 ** 31
