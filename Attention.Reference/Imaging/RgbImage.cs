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
    /// What StbImageSharp (a port of C code that reads past its data on damaged files) throws for a damaged image: its own
    /// messages and the runtime's range and stream errors. Every one is the file's fault, reported naming it.
    /// </summary>
    private static bool IsDecoderFailure(Exception e) => e is InvalidOperationException or ArgumentException or IndexOutOfRangeException
        or NullReferenceException or IOException or OverflowException;
}
