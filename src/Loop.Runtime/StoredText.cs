namespace Loop.Runtime;

/// <summary>What text Loop accepts for a message or a prompt: anything Unicode can say, but no NUL
/// (U+0000), which neither the store nor the agent's CLI carries intact, and no half of a
/// surrogate pair, which is not a character at all and would reach the agent mangled.</summary>
public static class StoredText
{
    /// <summary>Throws a validation error naming <paramref name="field"/> and where the bad character is.</summary>
    public static void Ensure(string field, string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\0')
            {
                throw new LoopValidationException(field,
                    $"{field} contains a NUL character (U+0000) at position {i}; remove it: Loop cannot pass it on to the agent");
            }
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
                continue;
            }
            if (char.IsSurrogate(c))
            {
                throw new LoopValidationException(field,
                    $"{field} contains half of a surrogate pair (U+{(int)c:X4}) at position {i}, which is not valid Unicode; send the whole character");
            }
        }
    }
}
