namespace Loop.Domain;

using System.Security.Cryptography;

/// <summary>Makes ids like <c>run_01hx3k…</c>: a prefix, then a time-ordered, random, lower-case
/// base32 body, so ids sort by creation time and never collide across nodes. Within one process
/// ids are strictly increasing, even within one millisecond (as monotonic ULIDs are).</summary>
public static class Ids
{
    private const string Alphabet = "0123456789abcdefghjkmnpqrstvwxyz";
    private static readonly UInt128 RandomLimit = UInt128.One << 80;
    private static readonly object Gate = new();
    private static long _lastMs;
    private static UInt128 _lastRandom;

    public static string New(string prefix, TimeProvider time)
    {
        long ms;
        UInt128 random;
        lock (Gate)
        {
            ms = Math.Max(time.GetUtcNow().ToUnixTimeMilliseconds(), _lastMs);
            if (ms == _lastMs && _lastRandom + 1 < RandomLimit)
            {
                random = _lastRandom + 1;
            }
            else
            {
                Span<byte> bytes = stackalloc byte[16];
                RandomNumberGenerator.Fill(bytes);
                // The top bit stays clear so increments within a millisecond never overflow.
                random = new UInt128(BitConverter.ToUInt64(bytes[8..]), BitConverter.ToUInt64(bytes)) % (RandomLimit >> 1);
            }
            _lastMs = ms;
            _lastRandom = random;
        }

        Span<char> body = stackalloc char[26];
        var time48 = (ulong)ms;
        for (var i = 9; i >= 0; i--)
        {
            body[i] = Alphabet[(int)(time48 & 31)];
            time48 >>= 5;
        }
        for (var i = 25; i >= 10; i--)
        {
            body[i] = Alphabet[(int)(random & 31)];
            random >>= 5;
        }
        return string.Concat(prefix, "_", body);
    }
}
