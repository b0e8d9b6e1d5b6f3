namespace Loop.Dashboard.Tests;

using Microsoft.Playwright;

/// <summary>Full-page PNGs in the test output (screenshots/) and in the repository's git-ignored
/// artifacts/screenshots/, where people look at them after a run.</summary>
public static class Screenshots
{
    public static string OutputDirectory { get; } = Path.Combine(AppContext.BaseDirectory, "screenshots");

    public static string ArtifactsDirectory { get; } = Path.Combine(FindRepositoryRoot(), "artifacts", "screenshots");

    /// <summary>Saves the page as &lt;name&gt;.png; returns the test output path.</summary>
    public static async Task<string> SaveAsync(IPage page, string name)
    {
        var path = Path.Combine(OutputDirectory, name + ".png");
        Directory.CreateDirectory(OutputDirectory);
        // A focused field may have scrolled the page, and a sticky header would then sit mid-picture.
        await page.EvaluateAsync("() => window.scrollTo(0, 0)");
        await page.ScreenshotAsync(new() { Path = path, FullPage = true });
        Directory.CreateDirectory(ArtifactsDirectory);
        File.Copy(path, Path.Combine(ArtifactsDirectory, name + ".png"), overwrite: true);
        return path;
    }

    /// <summary>Removes failure screenshots of earlier runs, so those left are this run's.</summary>
    public static void ClearFailures()
    {
        foreach (var directory in new[] { OutputDirectory, ArtifactsDirectory }.Where(Directory.Exists))
        {
            foreach (var file in Directory.EnumerateFiles(directory, "failed-*.png"))
            {
                File.Delete(file);
            }
        }
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Loop.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("cannot find the repository root (Loop.sln) above " + AppContext.BaseDirectory);
    }
}
