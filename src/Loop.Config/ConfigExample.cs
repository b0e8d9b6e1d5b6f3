namespace Loop.Config;

/// <summary>The commented example config.json that onboarding writes: every key with its default.</summary>
public static class ConfigExample
{
    private static readonly Lazy<string> Content = new(() =>
    {
        using var stream = typeof(ConfigExample).Assembly.GetManifestResourceStream("Loop.Config.config.example.jsonc")
            ?? throw new InvalidOperationException("config.example.jsonc is missing from the Loop.Config assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    public static string Text => Content.Value;
}
