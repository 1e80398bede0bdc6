namespace Attention.Reference.IO;

/// <summary>
/// Reading an input file whole, safely: only a regular file (a device such as <c>/dev/zero</c>, a pipe or a directory
/// is refused, naming it), at most the size its format allows, the size checked before anything is read, and exactly
/// that many bytes read (a file that keeps producing data is refused, never read without end).
/// </summary>
public static class InputFile
{
    /// <summary>The most bytes any tensor file may hold (an array's limit).</summary>
    public static long TensorLimit => Array.MaxLength;

    /// <summary>The bytes of <paramref name="path"/>, a <paramref name="what"/> (for messages: "safetensors file", "image").</summary>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">Not a regular file, or larger than <paramref name="maxBytes"/>.</exception>
    public static byte[] ReadAllBytes(string path, long maxBytes, string what)
    {
        using var stream = OpenRead(path, Math.Min(maxBytes, Array.MaxLength), what);
        var bytes = GC.AllocateUninitializedArray<byte>((int)stream.Length);
        stream.ReadExactly(bytes);
        // A device reports no length but keeps producing bytes (/dev/zero, /dev/urandom): one more byte gives it away.
        Span<byte> probe = stackalloc byte[1];
        if (stream.Read(probe) != 0) throw NotRegular(path, what);
        return bytes;
    }

    /// <summary>
    /// <paramref name="path"/> opened for reading as a stream (a zip archive reads only the entries it needs), after the
    /// same checks: a regular file of at most <paramref name="maxBytes"/> bytes. A device that reports no length opens as
    /// an empty file, which every format refuses.
    /// </summary>
    public static FileStream OpenRead(string path, long maxBytes, string what)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path)) throw new InvalidDataException($"{path}: is a folder, not a {what}.");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file.", path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            if (!stream.CanSeek) throw NotRegular(path, what);
            if (stream.Length > maxBytes)
                throw new InvalidDataException($"{path}: {stream.Length} bytes is more than a {what} may hold here ({maxBytes} at most).");
            return stream;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>The text of <paramref name="path"/> (UTF-8), read as <see cref="ReadAllBytes"/> reads bytes.</summary>
    public static string ReadAllText(string path, long maxBytes, string what)
    {
        var bytes = ReadAllBytes(path, maxBytes, what);
        return new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetString(
            bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? bytes.AsSpan(3) : bytes);
    }

    private static InvalidDataException NotRegular(string path, string what) =>
        new($"{path}: not a regular file (a device, a pipe, or a file still being written); give the {what} as a file.");
}
