using System.Buffers.Binary;
using System.Text;

namespace Attention.Reference.Tests.Support;

/// <summary>
/// Seeded byte-level mutations of valid files, for fuzzing readers: bit flips, overwrites with bytes that matter to
/// parsers, insertions, deletions, truncations, duplicated chunks, decimal numbers in text replaced by huge or negative
/// ones, little-endian length fields replaced by extreme values, and tokens from a format-specific dictionary. The same
/// seed gives the same mutants on every machine (System.Random with a seed is deterministic), so a failure reproduces
/// from the seed and the mutant's index.
/// </summary>
public static class Mutator
{
    /// <summary>Bytes parsers treat specially: bounds, sign bits, digits, JSON and Python punctuation, UTF-8 leads.</summary>
    private static readonly byte[] InterestingBytes =
    [
        0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE, (byte)'0', (byte)'1', (byte)'9', (byte)'{', (byte)'}', (byte)'[', (byte)']',
        (byte)'(', (byte)')', (byte)'"', (byte)'\'', (byte)'\\', (byte)',', (byte)':', (byte)' ', (byte)'\t', (byte)'\n',
        (byte)'-', (byte)'.', (byte)'e', 0xC3, 0xED, 0xA0, 0x85,
    ];

    /// <summary>Replacements for a decimal number in text: the edges of every integer width, negatives, floats.</summary>
    private static readonly string[] InterestingNumbers =
    [
        "0", "00", "01", "-1", "-0", "1", "255", "256", "65535", "65536", "2147483647", "2147483648", "-2147483648",
        "4294967295", "4294967296", "1073741824", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
        "18446744073709551615", "18446744073709551616", "99999999999999999999999999999999", "1e308", "1e309", "1.5",
        "-1e-320", "0x10", "1_000",
    ];

    /// <summary>Replacements for a little-endian integer field (a length prefix): 0, 1, and the edges of each width.</summary>
    private static readonly ulong[] InterestingIntegers =
    [
        0, 1, 7, 8, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFF4, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
        0x100000000, 100_000_000, 100_000_001, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, ulong.MaxValue,
    ];

    /// <summary>
    /// <paramref name="count"/> mutants of <paramref name="input"/>, each 1 to 4 stacked mutations, the same for the same
    /// <paramref name="seed"/>. <paramref name="dictionary"/> holds tokens of the format (keys, escapes, type names) that
    /// are sometimes inserted or written over the input.
    /// </summary>
    public static IEnumerable<byte[]> Mutants(byte[] input, int count, int seed, IReadOnlyList<byte[]>? dictionary = null) =>
        Mutants([input], count, seed, dictionary);

    /// <summary>
    /// <paramref name="count"/> mutants, each of an input chosen at random from <paramref name="inputs"/>; otherwise as
    /// <see cref="Mutants(byte[], int, int, IReadOnlyList{byte[]}?)"/>.
    /// </summary>
    public static IEnumerable<byte[]> Mutants(IReadOnlyList<byte[]> inputs, int count, int seed,
        IReadOnlyList<byte[]>? dictionary = null)
    {
        if (inputs.Count == 0) throw new ArgumentException("At least one input is needed.", nameof(inputs));
        var random = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            byte[] bytes = inputs[random.Next(inputs.Count)];
            // Mostly one mutation, so that most mutants stay close to valid and reach deep into the reader.
            int mutations = random.Next(8) switch { < 4 => 1, < 6 => 2, 6 => 3, _ => 4 };
            for (int m = 0; m < mutations; m++) bytes = Mutate(bytes, random, dictionary);
            yield return bytes;
        }
    }

    /// <summary>One random mutation of <paramref name="bytes"/> (a new array; the input is not changed).</summary>
    public static byte[] Mutate(byte[] bytes, Random random, IReadOnlyList<byte[]>? dictionary = null)
    {
        var b = new List<byte>(bytes);
        // Kept within a small multiple of the input, so that a long run of insertions cannot grow a mutant without end.
        int cap = 4 * bytes.Length + 1024;
        switch (random.Next(dictionary is { Count: > 0 } ? 11 : 9))
        {
            case 0: // flip a bit
                if (b.Count > 0) b[random.Next(b.Count)] ^= (byte)(1 << random.Next(8));
                break;
            case 1: // overwrite a byte with one that matters to parsers
                if (b.Count > 0) b[random.Next(b.Count)] = Pick(InterestingBytes, random);
                break;
            case 2: // overwrite a byte at random
                if (b.Count > 0) b[random.Next(b.Count)] = (byte)random.Next(256);
                break;
            case 3: // insert a few bytes
            {
                int n = 1 + random.Next(8);
                var insert = new byte[n];
                for (int i = 0; i < n; i++)
                    insert[i] = random.Next(2) == 0 ? Pick(InterestingBytes, random) : (byte)random.Next(256);
                b.InsertRange(random.Next(b.Count + 1), insert);
                break;
            }
            case 4: // delete a chunk
                if (b.Count > 0)
                {
                    int at = random.Next(b.Count);
                    b.RemoveRange(at, Math.Min(b.Count - at, 1 + random.Next(16)));
                }
                break;
            case 5: // truncate
                if (b.Count > 0)
                {
                    int keep = random.Next(b.Count);
                    b.RemoveRange(keep, b.Count - keep);
                }
                break;
            case 6: // duplicate a chunk, sometimes several times over
                if (b.Count > 0)
                {
                    int at = random.Next(b.Count), n = 1 + random.Next(Math.Min(64, b.Count - at));
                    var chunk = b.GetRange(at, n);
                    int copies = random.Next(4) == 0 ? 1 + random.Next(32) : 1;
                    int to = random.Next(b.Count + 1);
                    for (int c = 0; c < copies && b.Count + n <= cap; c++) b.InsertRange(to, chunk);
                }
                break;
            case 7: // replace a decimal number in the text with a huge, negative or odd one
                ReplaceNumber(b, random);
                break;
            case 8: // write an extreme little-endian integer over a 2-, 4- or 8-byte field (length prefixes)
            {
                int width = 2 << random.Next(3);
                if (b.Count < width) break;
                // Mostly at the start, where the formats keep their lengths.
                int at = random.Next(2) == 0 ? random.Next(Math.Min(16, b.Count - width + 1)) : random.Next(b.Count - width + 1);
                ulong v = Pick(InterestingIntegers, random);
                if (random.Next(4) == 0) v += (ulong)(random.Next(33) - 16);
                Span<byte> field = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(field, v);
                for (int i = 0; i < width; i++) b[at + i] = field[i];
                break;
            }
            case 9: // insert a token of the format
                b.InsertRange(random.Next(b.Count + 1), Pick(dictionary!, random));
                break;
            default: // write a token of the format over the input
            {
                byte[] token = Pick(dictionary!, random);
                int at = random.Next(b.Count + 1);
                for (int i = 0; i < token.Length; i++)
                    if (at + i < b.Count) b[at + i] = token[i];
                    else b.Add(token[i]);
                break;
            }
        }
        return b.Count > cap ? b.GetRange(0, cap).ToArray() : b.ToArray();
    }

    /// <summary>Tokens given as text, encoded as UTF-8, for the <c>dictionary</c> parameters.</summary>
    public static IReadOnlyList<byte[]> Dictionary(params string[] tokens) => tokens.Select(Encoding.UTF8.GetBytes).ToArray();

    /// <summary>
    /// Tokens of a binary format, one byte per character ("\u00ff\u00d9" is the two bytes 0xFF 0xD9; UTF-8 would make it
    /// four): for the <c>dictionary</c> parameters.
    /// </summary>
    public static IReadOnlyList<byte[]> Bytes(params string[] tokens) => tokens.Select(Encoding.Latin1.GetBytes).ToArray();

    private static void ReplaceNumber(List<byte> b, Random random)
    {
        // The digit runs of the text; one is chosen, its sign included, and replaced.
        var runs = new List<(int Start, int Length)>();
        for (int i = 0; i < b.Count;)
        {
            if (!IsDigit(b[i])) { i++; continue; }
            int start = i > 0 && b[i - 1] == '-' ? i - 1 : i;
            while (i < b.Count && IsDigit(b[i])) i++;
            runs.Add((start, i - start));
        }
        if (runs.Count == 0) return;
        var (s, n) = runs[random.Next(runs.Count)];
        string replacement = random.Next(4) == 0
            ? new string('9', 1 + random.Next(40))
            : Pick(InterestingNumbers, random);
        b.RemoveRange(s, n);
        b.InsertRange(s, Encoding.ASCII.GetBytes(replacement));
    }

    private static bool IsDigit(byte c) => c is >= (byte)'0' and <= (byte)'9';

    private static T Pick<T>(IReadOnlyList<T> items, Random random) => items[random.Next(items.Count)];
}
