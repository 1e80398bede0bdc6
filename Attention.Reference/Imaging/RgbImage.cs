using StbImageSharp;

namespace Attention.Reference.Imaging;

/// <summary>An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B.</summary>
/// <param name="Width">Columns.</param>
/// <param name="Height">Rows.</param>
/// <param name="Pixels">Width·Height·3 bytes.</param>
public sealed record RgbImage(int Width, int Height, byte[] Pixels)
{
    /// <summary>The largest image accepted: 2^28 pixels (checked from the header before decoding).</summary>
    public const long MaxPixels = 1L << 28;

    /// <summary>
    /// Decodes a PNG or JPEG (also BMP, GIF, TGA, PSD, HDR as stb_image reads them) with StbImageSharp, a pure-managed
    /// port of stb_image, to 8-bit RGB (grey and alpha dropped or expanded as stb_image does).
    /// </summary>
    public static RgbImage Load(string path)
    {
        return Decode(IO.InputFile.ReadAllBytes(path, 1L << 30, "image"), path);
    }

    /// <summary>Decodes the bytes of an image file; <paramref name="path"/> names it in errors.</summary>
    /// <exception cref="InvalidDataException">Not an image the decoder reads, a size outside 1 .. <see cref="MaxPixels"/>, or damaged.</exception>
    public static RgbImage Decode(byte[] bytes, string path)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        CheckJpegSegments(bytes, path);
        ImageInfo? info;
        try
        {
            using var probe = new MemoryStream(bytes, writable: false);
            info = ImageInfo.FromStream(probe);
        }
        catch (Exception e) when (IsDecoderFailure(e))
        {
            throw new InvalidDataException($"{path}: the image header cannot be read ({e.Message}).", e);
        }
        if (info is not { } i)
            throw new InvalidDataException($"{path}: not an image this decoder reads (PNG, JPEG, BMP, GIF, TGA, PSD, HDR).");
        if (i.Width < 1 || i.Height < 1 || (long)i.Width * i.Height > MaxPixels)
            throw new InvalidDataException($"{path}: image size {i.Width}x{i.Height} is outside 1 .. {MaxPixels} pixels.");
        ImageResult r;
        try
        {
            r = ImageResult.FromMemory(bytes, ColorComponents.RedGreenBlue);
        }
        catch (Exception e) when (IsDecoderFailure(e))
        {
            throw new InvalidDataException($"{path}: the image cannot be decoded ({e.Message}).", e);
        }
        if (r.Data is null || r.Data.Length != checked(r.Width * r.Height * 3))
            throw new InvalidDataException($"{path}: the decoder returned {r.Data?.Length ?? 0} bytes for {r.Width}x{r.Height} RGB.");
        return new RgbImage(r.Width, r.Height, r.Data);
    }

    /// <summary>
    /// A JPEG's marker segments must lie inside the file: StbImageSharp's header reader skips a segment by its declared
    /// length and then looks for the next marker without ever seeing the end of the data, so a segment running past
    /// the end (a truncated file, or a damaged length) made it loop for minutes (found by the image fuzz). Walks SOI to
    /// EOI: each segment's length (≥ 2) must end inside the file; after a scan header, the entropy-coded data runs to
    /// the next marker (0xFF followed by neither 0x00 nor a restart marker). Not a JPEG: nothing to check.
    /// </summary>
    internal static void CheckJpegSegments(byte[] b, string path)
    {
        if (b.Length < 2 || b[0] != 0xFF || b[1] != 0xD8) return;
        int p = 2;
        while (true)
        {
            while (p < b.Length && b[p] == 0xFF && p + 1 < b.Length && b[p + 1] == 0xFF) p++; // fill bytes
            if (p + 1 >= b.Length)
                throw new InvalidDataException($"{path}: damaged JPEG: the data ends at byte {b.Length} before its end marker.");
            if (b[p] != 0xFF)
                throw new InvalidDataException($"{path}: damaged JPEG: byte {p} should start a marker (0xFF), is 0x{b[p]:X2}.");
            int m = b[p + 1];
            if (m == 0xD9) return; // EOI
            if (m is 0x01 or (>= 0xD0 and <= 0xD8)) { p += 2; continue; } // standalone markers
            if (p + 3 >= b.Length)
                throw new InvalidDataException($"{path}: damaged JPEG: the segment 0xFF{m:X2} at byte {p} is cut off.");
            int len = (b[p + 2] << 8) | b[p + 3];
            if (len < 2 || (long)p + 2 + len > b.Length)
                throw new InvalidDataException(
                    $"{path}: damaged JPEG: the segment 0xFF{m:X2} at byte {p} declares {len} bytes; the file has {b.Length - p - 2} after it.");
            p += 2 + len;
            if (m != 0xDA) continue;
            // A scan: its entropy-coded data, up to the next marker that is not a stuffed 0xFF00 or a restart.
            while (p + 1 < b.Length && !(b[p] == 0xFF && b[p + 1] != 0x00 && b[p + 1] is not (>= 0xD0 and <= 0xD7))) p++;
        }
    }

    /// <summary>
    /// What StbImageSharp (a port of C code that reads past its data on damaged files) throws for a damaged image: its own
    /// messages and the runtime's range and stream errors. Every one is the file's fault, reported naming it.
    /// </summary>
    private static bool IsDecoderFailure(Exception e) => e is InvalidOperationException or ArgumentException or IndexOutOfRangeException
        or NullReferenceException or IOException or OverflowException;
}
