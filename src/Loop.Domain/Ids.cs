namespace Loop.Domain;

using System.Security.Cryptography;

/// <summary>Makes ids like <c>run_01hx3k…</c>: a prefix, then a time-ordered, random, lower-case
/// base32 body, so ids sort by creation time and never collide across nodes.</summary>
public static class Ids
{
    private const string Alphabet = "0123456789abcdefghjkmnpqrstvwxyz";

    public static string New(string prefix, TimeProvider time)
    {
        Span<char> body = stackalloc char[26];
        var ms = (ulong)time.GetUtcNow().ToUnixTimeMilliseconds();
        for (var i = 9; i >= 0; i--)
        {
            body[i] = Alphabet[(int)(ms & 31)];
            ms >>= 5;
        }
        Span<byte> random = stackalloc byte[16];
        RandomNumberGenerator.Fill(random);
        for (var i = 10; i < 26; i++)
        {
            body[i] = Alphabet[random[i - 10] & 31];
        }
        return string.Concat(prefix, "_", body);
    }
}
