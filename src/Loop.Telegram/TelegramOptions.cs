namespace Loop.Telegram;

/// <summary>How long the bot waits between things; Telegram's own pace by default, shorter in tests.</summary>
/// <param name="PollTimeout">getUpdates' long-poll timeout (Telegram allows up to 50 s).</param>
/// <param name="Typing">How often "typing" is renewed while a run works (Telegram shows it for 5 s).</param>
/// <param name="ReconnectBase">The first wait after a failed poll; it doubles up to <paramref name="ReconnectMax"/>.</param>
/// <param name="RefusalEvery">How often a stranger is told they are not on the list.</param>
public sealed record TelegramTimings(
    TimeSpan? PollTimeout = null,
    TimeSpan? Typing = null,
    TimeSpan? ReconnectBase = null,
    TimeSpan? ReconnectMax = null,
    TimeSpan? RefusalEvery = null)
{
    public TimeSpan Poll => PollTimeout ?? TimeSpan.FromSeconds(25);
    public TimeSpan TypingEvery => Typing ?? TimeSpan.FromSeconds(4);
    public TimeSpan ReconnectFirst => ReconnectBase ?? TimeSpan.FromSeconds(1);
    public TimeSpan ReconnectLongest => ReconnectMax ?? TimeSpan.FromSeconds(60);
    public TimeSpan Refusal => RefusalEvery ?? TimeSpan.FromDays(1);
}

/// <summary>A Telegram connector's settings, as <see cref="Loop.Domain.Connectors.ConnectorSpec"/> checked them.</summary>
/// <param name="Allowed">The whitelist: user ids as digits, usernames as "@lowercase", "*" for anyone; empty lets nobody in.</param>
/// <param name="WebhookUrl">This Loop's public address when Telegram is to call it; null: long polling.</param>
public sealed record TelegramOptions(string Token, string ApiUrl, IReadOnlyList<string> Allowed, string? WebhookUrl = null)
{
    public const string DefaultApiUrl = "https://api.telegram.org";

    public TelegramTimings Timings { get; init; } = new();

    /// <summary>The secret Telegram sends with each webhook call (X-Telegram-Bot-Api-Secret-Token).
    /// Derived from the token, so every node knows it and nothing more is stored; it changes with the token.</summary>
    public string? WebhookSecret => WebhookUrl is null ? null
        : Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Token), "loop telegram webhook"u8));

    /// <summary>Where Telegram posts this connector's updates in webhook mode.</summary>
    public string? HookUrl(string connectorId) => WebhookUrl is null ? null : $"{WebhookUrl}/hooks/{Uri.EscapeDataString(connectorId)}";

    public static TelegramOptions From(IReadOnlyDictionary<string, string> settings, IReadOnlyDictionary<string, string> secrets, IReadOnlyList<string> allowed) =>
        new(secrets.GetValueOrDefault("token") ?? throw new InvalidOperationException("the Telegram connector has no token"),
            settings.GetValueOrDefault("api_url") is { Length: > 0 } url ? url.TrimEnd('/') : DefaultApiUrl,
            allowed,
            settings.GetValueOrDefault("webhook_url") is { Length: > 0 } hook ? hook.TrimEnd('/') : null);

    /// <summary>Whether this user may talk to the agent.</summary>
    public bool Allows(long userId, string? username) =>
        Allowed.Contains("*")
        || Allowed.Contains(userId.ToString(System.Globalization.CultureInfo.InvariantCulture))
        || (username is { Length: > 0 } && Allowed.Contains("@" + username.ToLowerInvariant()));
}
