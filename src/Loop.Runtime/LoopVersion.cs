namespace Loop.Runtime;

using System.Reflection;

/// <summary>The version this build of Loop reports (health, the Runtime page, chat commands).</summary>
public static class LoopVersion
{
    public static string Current { get; } =
        typeof(LoopVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";
}
