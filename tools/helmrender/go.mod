module revstream/helmrender

go 1.19
