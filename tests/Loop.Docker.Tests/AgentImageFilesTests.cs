namespace Loop.Docker.Tests;

public sealed class AgentImageFilesTests
{
    private static string RepoFile(string relative)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Loop.sln")))
        {
            dir = dir.Parent;
        }

        return Path.Combine(dir!.FullName, relative);
    }

    [Fact]
    public void The_production_image_files_are_embedded_as_they_are_in_the_repository()
    {
        Assert.Equal(File.ReadAllText(RepoFile("container/Dockerfile")), AgentImageFiles.Dockerfile);
        Assert.Equal(File.ReadAllText(RepoFile("container/entrypoint.sh")), AgentImageFiles.Entrypoint);
        Assert.Equal(["Dockerfile", "entrypoint.sh"], AgentImageFiles.All.Keys.Order());
        Assert.Equal(File.ReadAllBytes(RepoFile("container/entrypoint.sh")), AgentImageFiles.All["entrypoint.sh"]);
    }
}
