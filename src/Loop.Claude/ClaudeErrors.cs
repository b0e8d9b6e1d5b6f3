namespace Loop.Claude;

public static class ClaudeErrors
{
    /// <summary>The CLI's answer to <c>--resume</c> of a session it does not have (deleted, expired,
    /// or created in another directory or container home): it prints
    /// <c>No conversation found with session ID: &lt;id&gt;</c> on stderr and exits 1 without a result event.</summary>
    public const string SessionNotFoundMessage = "No conversation found with session ID";

    /// <summary>The result event's <c>subtype</c> when <c>--max-budget-usd</c> stopped the run.</summary>
    public const string MaxBudgetSubtype = "error_max_budget_usd";

    /// <summary>True when the run failed because the session to resume is unknown, so the caller may
    /// retry once without <c>--resume</c>. Looks at stderr and, in case a version reports it as the
    /// result instead, at the result text.</summary>
    public static bool IsSessionNotFound(string? stderr, string? resultText) =>
        Contains(stderr) || Contains(resultText);

    private static bool Contains(string? text) =>
        text is not null && text.Contains(SessionNotFoundMessage, StringComparison.OrdinalIgnoreCase);
}
