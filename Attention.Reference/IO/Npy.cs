using System.Buffers.Binary;
using System.Text;

namespace Attention.Reference.IO;

/// <summary>
/// NumPy's .npy format, versions 1.0 and 2.0: the magic "\x93NUMPY", a version, a header length (2 bytes in 1.0, 4 in
/// 2.0), a Python dict literal with 'descr', 'fortran_order' and 'shape', then the data. Reads and writes little-endian
/// float32 ('&lt;f4') and float64 ('&lt;f8') in C order; refuses Fortran order and other dtypes with a clear message.
/// </summary>
public static class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Every array of a NumPy .npz archive (numpy.savez), named by its entry without ".npy".</summary>
    public static List<StoredTensor> ReadNpz(string path)
    {
        using var stream = InputFile.OpenRead(path, long.MaxValue, ".npz file");
        var result = new List<StoredTensor>();
        try
        {
            using var zip = new System.IO.Compression.ZipArchive(stream, System.IO.Compression.ZipArchiveMode.Read);
            foreach (var entry in zip.Entries)
            {
                if (!entry.FullName.EndsWith(".npy", StringComparison.Ordinal))
                    throw new InvalidDataException($"{path}: entry '{entry.FullName}' is not a .npy array (not a file numpy.savez wrote).");
                if (entry.Length > InputFile.TensorLimit)
                    throw new InvalidDataException($"{path}: entry '{entry.FullName}' declares {entry.Length} bytes, more than an array can hold.");
                using var input = entry.Open();
                using var buffer = new MemoryStream((int)Math.Min(entry.Length, 1 << 16));
                input.CopyTo(buffer);
                if (buffer.Length != entry.Length)
                    throw new InvalidDataException($"{path}: entry '{entry.FullName}' holds {buffer.Length} bytes but declares {entry.Length}.");
                string name = entry.FullName[..^4];
                result.Add(Npy.Parse(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), name, $"{path}: {entry.FullName}"));
            }
        }
        catch (Exception e) when (e is InvalidDataException && !e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{path}: not a .npz archive (a zip of .npy files): {e.Message}", e);
        }
        return result;
    }

    /// <summary>Reads a .npy file. The tensor is named after the file (without extension).</summary>
    public static StoredTensor Read(string path) =>
        Parse(InputFile.ReadAllBytes(path, InputFile.TensorLimit, ".npy file"), Path.GetFileNameWithoutExtension(path), path);

    /// <summary>Parses the bytes of a .npy file.</summary>
    /// <exception cref="InvalidDataException">The bytes are malformed or of an unsupported dtype or order.</exception>
    public static StoredTensor Parse(ReadOnlySpan<byte> bytes, string name, string source = "npy")
    {
        if (bytes.Length < 10 || !bytes[..6].SequenceEqual(Magic)) throw Bad(source, "missing the \\x93NUMPY magic");
        byte major = bytes[6], minor = bytes[7];
        // The header length is a u16 in version 1.0 and a u32 in 2.0; it is kept in a long so that start + length
        // cannot wrap past the bounds check (a length near 2^31 did, and Slice threw ArgumentOutOfRangeException).
        long headerLen;
        int headerStart;
        if (major == 1) { headerLen = BinaryPrimitives.ReadUInt16LittleEndian(bytes[8..]); headerStart = 10; }
        else if (major is 2 or 3)
        {
            if (major == 3) throw Bad(source, "version 3.0 (UTF-8 header) is not supported; write version 1.0 or 2.0");
            if (bytes.Length < 12) throw Bad(source, "truncated header");
            headerLen = BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]);
            headerStart = 12;
        }
        else throw Bad(source, $"unsupported version {major}.{minor}; supported: 1.0, 2.0");
        if (minor != 0) throw Bad(source, $"unsupported version {major}.{minor}; supported: 1.0, 2.0");
        if (bytes.Length - headerStart < headerLen)
            throw Bad(source, $"header of {headerLen} bytes runs past the end of the file ({bytes.Length} bytes)");
        var (descr, fortranOrder, shape) = NpyHeader.Parse(bytes.Slice(headerStart, (int)headerLen), source);
        if (fortranOrder)
            throw Bad(source, "Fortran-order arrays are not supported; save a C-order array (np.ascontiguousarray)");
        StoredDType dtype = descr switch
        {
            "<f8" => StoredDType.F64,
            "<f4" => StoredDType.F32,
            _ => throw Bad(source, $"dtype '{descr}' is not supported; supported: '<f4' (float32), '<f8' (float64)"),
        };
        int size = StoredTensor.SizeOf(dtype);
        // Checked, so that a product that wraps (2^30 · 2^30 · 2 elements of 8 bytes is 2^64, i.e. 0) cannot pass for
        // a small one. A zero anywhere makes the array empty whatever the other dimensions, as in numpy.
        long count = shape.Contains(0) ? 0 : 1;
        if (count != 0)
            foreach (int d in shape)
                if (!StoredTensors.TryMultiply(count, d, out count)) throw SizeOverflow(source, shape, descr);
        if (!StoredTensors.TryMultiply(count, size, out long needed)) throw SizeOverflow(source, shape, descr);
        var data = bytes[(headerStart + (int)headerLen)..];
        if (data.Length != needed)
            throw Bad(source, $"shape {ShapeUtil.Format(shape)} of {descr} needs {needed} data bytes, "
                + $"the file has {data.Length}");
        // needed equals the real byte count, so the allocation is bounded by the file's size.
        var values = new double[count];
        for (int i = 0; i < values.Length; i++)
            values[i] = size == 8 ? BinaryPrimitives.ReadDoubleLittleEndian(data[(8 * i)..]) : BinaryPrimitives.ReadSingleLittleEndian(data[(4 * i)..]);
        return new StoredTensor(name, dtype, shape, values);
    }

    /// <summary>Writes a tensor atomically (version 1.0, or 2.0 when the header needs it).</summary>
    public static void Write<T>(string path, DenseTensor<T> tensor) where T : IFloatingPointIeee754<T> =>
        AtomicFile.Write(path, s => s.Write(Serialize(tensor)));

    /// <summary>The bytes of a .npy file holding <paramref name="tensor"/>.</summary>
    public static byte[] Serialize<T>(DenseTensor<T> tensor, int? forceMajorVersion = null) where T : IFloatingPointIeee754<T>
    {
        var dtype = StoredTensors.DTypeOf<T>();
        int size = StoredTensor.SizeOf(dtype);
        var shape = tensor.ShapeArray();
        string shapeText = shape.Length == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";
        string dict = $"{{'descr': '{(size == 8 ? "<f8" : "<f4")}', 'fortran_order': False, 'shape': {shapeText}, }}";
        int major = forceMajorVersion ?? (dict.Length + 11 > ushort.MaxValue ? 2 : 1);
        int prefix = major == 1 ? 10 : 12;
        int total = prefix + dict.Length + 1;
        int padded = (total + 63) / 64 * 64; // align the data to 64 bytes, as numpy does
        string header = dict + new string(' ', padded - total) + "\n";
        var result = new byte[prefix + header.Length + (long)tensor.Length * size];
        Magic.CopyTo(result, 0);
        result[6] = (byte)major;
        result[7] = 0;
        if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(result.AsSpan(8), (ushort)header.Length);
        else BinaryPrimitives.WriteUInt32LittleEndian(result.AsSpan(8), (uint)header.Length);
        Encoding.Latin1.GetBytes(header).CopyTo(result, prefix);
        int pos = prefix + header.Length;
        foreach (var v in tensor.Data)
        {
            if (size == 8) BinaryPrimitives.WriteDoubleLittleEndian(result.AsSpan(pos), double.CreateTruncating(v));
            else BinaryPrimitives.WriteSingleLittleEndian(result.AsSpan(pos), float.CreateTruncating(v));
            pos += size;
        }
        return result;
    }

    private static InvalidDataException SizeOverflow(string source, int[] shape, string descr) =>
        Bad(source, $"shape {ShapeUtil.Format(shape)} of {descr} has a size in bytes that overflows 64 bits");

    /// <summary>The error for a malformed file: its source, then what is wrong.</summary>
    internal static InvalidDataException Bad(string source, string what) => new($"{source}: malformed .npy: {what}.");
}
