namespace Loop.Domain.Tasks;

/// <summary>
/// The config's <c>misfire_grace_sec</c>: a slot claimed more than this long after it came due was
/// missed (the daemon was down, or far behind), and a task whose misfire policy is
/// <see cref="MisfirePolicy.Skip"/> lets it go. A slot claimed within it fires whatever the policy:
/// a restart or a busy second is not a misfire.
/// </summary>
public sealed record MisfireGrace(TimeSpan Value)
{
    public const string Key = "misfire_grace_sec";

    public static MisfireGrace FromSeconds(int seconds) => new(TimeSpan.FromSeconds(seconds));

    /// <summary>Whether the slot due at <paramref name="due"/>, claimed at <paramref name="now"/>, runs.</summary>
    public bool Fires(MisfirePolicy policy, DateTimeOffset due, DateTimeOffset now) =>
        policy == MisfirePolicy.RunOnce || now - due <= Value;
}
