#!/usr/bin/python3
"""Builds the decoder fixtures in this folder. Deterministic: fixed seeds, no timestamps.

Run with Debian's Python (numpy, PIL, tifffile, GDAL's osgeo bindings) and the `vips` CLI:
    /usr/bin/python3 testdata/make-fixtures.py
Every lossless fixture has a `truth/*.npy` made by numpy from the same array, so the tests
compare our decoders against pixels that never went through our code or through sharp.
See README.md for the table of fixtures.
"""
import os
import struct
import subprocess
import zlib

import numpy as np
import tifffile
from osgeo import gdal
from PIL import Image

gdal.UseExceptions()
HERE = os.path.dirname(os.path.abspath(__file__))
TRUTH = os.path.join(HERE, 'truth')
# Adobe RGB (1998) from Debian's ghostscript: a profile whose conversion to sRGB would change
# every pixel, so a decoder that applies it instead of passing it through is caught.
ICC_PATH = '/usr/share/color/icc/ghostscript/a98.icc'

# Main image: odd size so tiles and strips end part-way; secondary images smaller.
W, H = 211, 143
W2, H2 = 97, 67


def path(name):
    return os.path.join(HERE, name)


def truth(name, array):
    np.save(os.path.join(TRUTH, name), np.ascontiguousarray(array))


def gradient_noise(rng, h, w, channels, bits):
    """A smooth gradient per channel plus a little noise: photo-like enough, compresses well."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for c in range(channels):
        angle = 0.7 + 1.3 * c
        g = (np.cos(angle) * x / w + np.sin(angle) * y / h + 1.5) / 3.0
        planes.append(g)
    g = np.stack(planes, -1)
    if bits == 8:
        a = g * 240 + rng.integers(0, 12, g.shape)
        return np.clip(a, 0, 255).astype(np.uint8)
    # 16-bit: the noise reaches the high byte too, so swapped bytes cannot pass unnoticed.
    a = g * 60000 + rng.integers(0, 4096, g.shape)
    return np.clip(a, 0, 65535).astype(np.uint16)


def squeeze(a):
    return a[:, :, 0] if a.shape[2] == 1 else a


def write_pnm(name, a, comment=True):
    """P5 (gray) or P6 (RGB), samples big-endian when 16-bit (netpbm.sourceforge.net/doc/pgm.html)."""
    channels = 1 if a.ndim == 2 else a.shape[2]
    magic = b'P5' if channels == 1 else b'P6'
    maxval = 65535 if a.dtype == np.uint16 else 255
    header = magic + b'\n'
    if comment:
        header += b'# made by testdata/make-fixtures.py\n'
    header += b'%d %d\n# a comment between tokens\n%d\n' % (a.shape[1], a.shape[0], maxval)
    with open(path(name), 'wb') as f:
        f.write(header)
        f.write(a.astype('>u2' if maxval == 65535 else 'u1').tobytes())


def write_pam(name, a, tupltype):
    """P7 (netpbm.sourceforge.net/doc/pam.html)."""
    channels = 1 if a.ndim == 2 else a.shape[2]
    maxval = 65535 if a.dtype == np.uint16 else 255
    header = b'P7\n# made by testdata/make-fixtures.py\nWIDTH %d\nHEIGHT %d\nDEPTH %d\nMAXVAL %d\nTUPLTYPE %s\nENDHDR\n' % (
        a.shape[1], a.shape[0], channels, maxval, tupltype.encode())
    with open(path(name), 'wb') as f:
        f.write(header)
        f.write(a.astype('>u2' if maxval == 65535 else 'u1').tobytes())


def vips(*args):
    subprocess.run(['vips', *args], check=True)


def gdal_tiff(name, a, options):
    """Writes `a` (h, w, c) with GDAL's GTiff driver (libtiff underneath)."""
    h, w, c = a.shape
    kind = gdal.GDT_UInt16 if a.dtype == np.uint16 else gdal.GDT_Byte
    mem = gdal.GetDriverByName('MEM').Create('', w, h, c, kind)
    for i in range(c):
        mem.GetRasterBand(i + 1).WriteArray(a[:, :, i])
    gdal.GetDriverByName('GTiff').CreateCopy(path(name), mem, options=options)
    mem = None
    aux = path(name) + '.aux.xml'
    if os.path.exists(aux):
        os.remove(aux)


def png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def main():
    os.makedirs(TRUTH, exist_ok=True)
    icc = open(ICC_PATH, 'rb').read()

    # ---- main RGB 8-bit image, many encodings ----
    rgb8 = gradient_noise(np.random.default_rng(1), H, W, 3, 8)
    truth('rgb8.npy', rgb8)
    im = Image.fromarray(rgb8)
    im.save(path('rgb8.png'))
    im.save(path('rgb8-icc.png'), icc_profile=icc)
    im.save(path('rgb8.webp'), lossless=True, quality=100, method=4)
    im.save(path('rgb8.jpg'), quality=90)
    im.save(path('rgb8-strip-lzw.tif'), compression='tiff_lzw')
    write_pnm('rgb8.ppm', rgb8)
    tifffile.imwrite(path('rgb8-strip-none.tif'), rgb8, photometric='rgb', rowsperstrip=16)
    tifffile.imwrite(path('rgb8-strip-deflate.tif'), rgb8, photometric='rgb', rowsperstrip=32,
                     compression='zlib', predictor=True)
    tifffile.imwrite(path('rgb8-planar.tif'), np.moveaxis(rgb8, 2, 0), photometric='rgb',
                     planarconfig='separate', compression='zlib')
    vips('copy', path('rgb8-icc.png'),
         path('rgb8-tiled-zstd.tif') + '[compression=zstd,predictor=horizontal,tile,tile-width=64,tile-height=64]')
    gdal_tiff('rgb8-tiled-deflate.tif', rgb8,
              ['COMPRESS=DEFLATE', 'TILED=YES', 'BLOCKXSIZE=32', 'BLOCKYSIZE=48', 'PHOTOMETRIC=RGB'])
    gdal_tiff('rgb8-tiled-zstd-be-bigtiff.tif', rgb8,
              ['COMPRESS=ZSTD', 'PREDICTOR=2', 'TILED=YES', 'BLOCKXSIZE=64', 'BLOCKYSIZE=32',
               'ENDIANNESS=BIG', 'BIGTIFF=YES', 'PHOTOMETRIC=RGB'])
    # EXIF Orientation 6 ("rotate 90 CW to display"): decoders keep the pixels as encoded, so
    # the truth is the unrotated decode, the same as rgb8.jpg's (same encoder, same quality).
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(path('rgb8-orient6.jpg'), quality=90, exif=exif.tobytes())
    # JPEG has no lossless truth: the oracle is libjpeg-turbo's decode through PIL, which
    # matched sharp's (mozjpeg) decode byte for byte when these fixtures were made.
    truth('rgb8-jpeg.npy', np.asarray(Image.open(path('rgb8.jpg')).convert('RGB')))

    # ---- secondary images: gray, gray+alpha, RGBA, 16-bit, palette, 1-bit ----
    rng = np.random.default_rng(2)
    gray8 = squeeze(gradient_noise(rng, H2, W2, 1, 8))
    graya8 = gradient_noise(rng, H2, W2, 2, 8)
    rgba8 = gradient_noise(rng, H2, W2, 4, 8)
    rgb16 = gradient_noise(rng, H2, W2, 3, 16)
    gray16 = squeeze(gradient_noise(rng, H2, W2, 1, 16))
    for name, a in [('gray8', gray8), ('graya8', graya8), ('rgba8', rgba8), ('rgb16', rgb16), ('gray16', gray16)]:
        truth(name + '.npy', a)

    Image.fromarray(gray8).save(path('gray8.png'))
    write_pnm('gray8.pgm', gray8, comment=False)
    Image.fromarray(graya8, 'LA').save(path('graya8.png'))
    write_pam('graya8.pam', graya8, 'GRAYSCALE_ALPHA')
    gdal_tiff('graya8-strip-deflate.tif', graya8, ['COMPRESS=DEFLATE', 'ALPHA=YES', 'BLOCKYSIZE=10'])
    Image.fromarray(rgba8, 'RGBA').save(path('rgba8.png'))
    Image.fromarray(rgba8, 'RGBA').save(path('rgba8.webp'), lossless=True, quality=100, exact=True)
    write_pam('rgba8.pam', rgba8, 'RGB_ALPHA')
    write_pam('gray8.pam', gray8, 'GRAYSCALE')

    # 16-bit: PIL cannot write 16-bit RGB PNG, so numpy writes a PPM and vips converts it.
    write_pnm('rgb16.ppm', rgb16)
    write_pnm('gray16.pgm', gray16)
    write_pam('rgb16.pam', rgb16, 'RGB')
    vips('copy', path('rgb16.ppm'), path('rgb16.png'))
    vips('copy', path('gray16.pgm'), path('gray16.png'))
    vips('copy', path('rgb16.ppm'),
         path('rgb16-tiled-zstd.tif') + '[compression=zstd,predictor=horizontal,tile,tile-width=32,tile-height=32]')
    # Big-endian 16-bit with predictor 2: samples must be swapped before un-differencing.
    gdal_tiff('rgb16-strip-deflate-be.tif', rgb16,
              ['COMPRESS=DEFLATE', 'PREDICTOR=2', 'ENDIANNESS=BIG', 'BLOCKYSIZE=7', 'PHOTOMETRIC=RGB'])
    tifffile.imwrite(path('gray16-strip-none-be.tif'), gray16, byteorder='>', photometric='minisblack',
                     rowsperstrip=1000)

    # Palette PNG: decoders expand it to RGB.
    palette = (np.arange(16 * 3, dtype=np.uint32).reshape(16, 3) * 37 % 256).astype(np.uint8)
    index = (gray8 // 16).astype(np.uint8)
    p = Image.fromarray(index, 'P')
    p.putpalette(palette.flatten().tolist())
    p.save(path('palette.png'))
    p.save(path('palette.gif'))
    truth('palette.npy', palette[index])
    # 1-bit gray PNG: expands to 0 / 255 (PNG spec 13.12, bit depth scaling).
    bits = gray8 >= 128
    Image.fromarray(bits).save(path('gray1.png'))
    truth('gray1.npy', np.where(bits, 255, 0).astype(np.uint8))

    # ---- negative fixtures ----
    neg = lambda name: path('bad/' + name)  # noqa: E731
    os.makedirs(path('bad'), exist_ok=True)

    def cut(src, name, fraction):
        data = open(path(src), 'rb').read()
        open(neg(name), 'wb').write(data[:int(len(data) * fraction)])

    # Small sources keep the broken copies small.
    small = rgb8[:64, :96]
    Image.fromarray(small).save(neg('truncated.png'))
    Image.fromarray(small).save(neg('truncated.jpg'), quality=90)
    Image.fromarray(small).save(neg('truncated.webp'), lossless=True)
    write_pnm('bad/truncated.ppm', small)
    for name in ['truncated.png', 'truncated.jpg', 'truncated.webp', 'truncated.ppm']:
        cut('bad/' + name, name, 0.6)
    # tifffile writes the IFD before the pixel data, so the cut lands inside tile data.
    tifffile.imwrite(neg('truncated-tiled.tif'), small, photometric='rgb', tile=(32, 32), compression='zlib')
    cut('bad/truncated-tiled.tif', 'truncated-tiled.tif', 0.6)

    Image.fromarray(small).save(neg('bad-crc.png'))
    png = bytearray(open(neg('bad-crc.png'), 'rb').read())
    idat = png.find(b'IDAT')
    bad_crc = bytearray(png)
    bad_crc[idat + 500] ^= 0xFF  # one flipped byte in IDAT data: the chunk CRC no longer matches
    open(neg('bad-crc.png'), 'wb').write(bytes(bad_crc))
    # Garbage inside one zstd tile (the TIFF structure intact): the tile fails to decompress.
    Image.fromarray(small).save(neg('small.png'))
    vips('copy', neg('small.png'), neg('corrupt-tile-zstd.tif') + '[compression=zstd,tile,tile-width=32,tile-height=32]')
    os.remove(neg('small.png'))
    zt = bytearray(open(neg('corrupt-tile-zstd.tif'), 'rb').read())
    offsets = tifffile.TiffFile(neg('corrupt-tile-zstd.tif')).pages[0].dataoffsets
    zt[offsets[5] + 4: offsets[5] + 40] = bytes(range(36))
    open(neg('corrupt-tile-zstd.tif'), 'wb').write(bytes(zt))
    Image.fromarray(small).save(neg('corrupt-lzw.tif'), compression='tiff_lzw')
    lzw = bytearray(open(neg('corrupt-lzw.tif'), 'rb').read())
    lzw_offsets = tifffile.TiffFile(neg('corrupt-lzw.tif')).pages[0].dataoffsets
    lzw[lzw_offsets[0] + 10: lzw_offsets[0] + 200] = bytes([0xFF]) * 190
    open(neg('corrupt-lzw.tif'), 'wb').write(bytes(lzw))

    # zstd with PlanarConfiguration 2: not streamable by tiff.ts, and sharp's libtiff lacks zstd.
    gdal_tiff('bad/zstd-planar.tif', small, ['COMPRESS=ZSTD', 'INTERLEAVE=BAND', 'PHOTOMETRIC=RGB'])
    open(neg('text.png'), 'w').write('This is not a PNG, only a text file with a .png name.\n')
    open(neg('empty.png'), 'wb').close()
    # A valid-looking PNG declaring 100000 x 100000 pixels with almost no data (a "bomb").
    ihdr = struct.pack('>IIBBBBB', 100000, 100000, 8, 2, 0, 0, 0)
    bomb = b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', ihdr) + png_chunk(b'IDAT', zlib.compress(bytes(1000))) + png_chunk(b'IEND', b'')
    open(neg('huge.png'), 'wb').write(bomb)

    cmyk = np.random.default_rng(3).integers(0, 256, (24, 32, 4), dtype=np.uint8)
    Image.fromarray(cmyk, 'CMYK').save(neg('cmyk.jpg'), quality=90)
    Image.fromarray(cmyk, 'CMYK').save(neg('cmyk.tif'))
    tifffile.imwrite(neg('miniswhite.tif'), gray8[:16, :16], photometric='miniswhite')
    tifffile.imwrite(neg('float32.tif'), np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16))
    open(neg('maxval1000.pgm'), 'wb').write(b'P5\n4 4\n1000\n' + bytes(32))
    open(neg('ascii.ppm'), 'wb').write(b'P3\n2 1\n255\n255 0 0  0 255 0\n')
    open(neg('vector.svg'), 'w').write(
        '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><rect width="16" height="16" fill="red"/></svg>\n')


if __name__ == '__main__':
    main()
